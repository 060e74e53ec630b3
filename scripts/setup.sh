#!/usr/bin/env bash
# Prepare a fresh machine: Debian packages (when run as root), uv, Python 3.13 and the
# locked environment. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
DEBIAN_PACKAGES=(chromium fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils gettext)

say() { printf '\033[1;32m==>\033[0m %s\n' "$*" >&2; }

install_debian_packages() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  else
    say "not root: please install these Debian packages yourself: ${missing[*]}"
  fi
}

find_uv() {
  if [ -x .tools/bin/uv ]; then echo .tools/bin/uv; return; fi
  if command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; then command -v uv; return; fi
  say "installing uv into .tools/"
  local py
  py=$(command -v python3 || command -v python)
  "$py" -m venv .tools >/dev/null
  .tools/bin/pip install -q "uv==$UV_VERSION" >&2
  echo .tools/bin/uv
}

find_python() {
  local candidate
  for candidate in "$(command -v python3.13 2>/dev/null || true)" \
                   $( (command -v pyenv >/dev/null 2>&1 && ls -d "$(pyenv root)"/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r) || true); do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      echo "$candidate"; return
    fi
  done
  echo ""
}

install_debian_packages
UV=$(find_uv)
PYTHON=$(find_python)
export UV_PYTHON_DOWNLOADS=${UV_PYTHON_DOWNLOADS:-never}
if [ -z "$PYTHON" ]; then
  say "Python 3.13 not found on PATH or in pyenv; asking uv for one"
  PYTHON=3.13
  export UV_PYTHON_DOWNLOADS=automatic
fi
"$UV" sync --frozen --python "$PYTHON" -q
echo "$UV" > .venv/.meterpay-uv
