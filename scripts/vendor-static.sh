#!/usr/bin/env bash
# Refresh the pinned front-end files in src/meterpay/web/static/vendor from npm.
# The copies are committed, so running meterpay needs neither Node nor a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=2.0.11
ECHARTS_VERSION=6.1.0
dest=src/meterpay/web/static/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$HTMX_VERSION" "echarts@$ECHARTS_VERSION" >/dev/null)
mkdir -p "$dest"
tar -xzf "$tmp/htmx.org-$HTMX_VERSION.tgz" -C "$tmp" package/dist/htmx.min.js
cp "$tmp/package/dist/htmx.min.js" "$dest/htmx.min.js"
rm -rf "$tmp/package"
tar -xzf "$tmp/echarts-$ECHARTS_VERSION.tgz" -C "$tmp" package/dist/echarts.min.js package/LICENSE
cp "$tmp/package/dist/echarts.min.js" "$dest/echarts.min.js"
cat > "$dest/VERSIONS" <<TXT
htmx.org $HTMX_VERSION (BSD-2-Clause)
echarts $ECHARTS_VERSION (Apache-2.0)
TXT
echo "vendored: htmx.org $HTMX_VERSION, echarts $ECHARTS_VERSION"
