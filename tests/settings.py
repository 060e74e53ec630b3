"""Test settings: the real settings with a fast password hasher and jobs run inline."""

from meterpay.settings import *  # noqa: F403
from meterpay.settings import HUEY

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
HUEY = {**HUEY, "immediate": True}
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
LANGUAGE_CODE = "en"
