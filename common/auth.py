"""API key format checks and the auth id that names a user everywhere (sha256 of the key)."""

from __future__ import annotations

import hashlib
import re

_KEY = re.compile(r"[A-Za-z0-9_\-+.=]{16,256}")
_AUTH_ID = re.compile(r"[0-9a-f]{64}")


def is_valid_api_key(key: str) -> bool:
    """True for 16+ characters of letters, digits and `_-+.=` (TBM's rule)."""
    return _KEY.fullmatch(key) is not None


def auth_id_for(key: str) -> str:
    """The user's id: 64 lowercase hex digits of sha256(api_key)."""
    return hashlib.sha256(key.encode()).hexdigest()


def is_valid_auth_id(auth_id: str) -> bool:
    """True only for 64 lowercase hex digits, so an auth id is always safe in a file name."""
    return _AUTH_ID.fullmatch(auth_id) is not None
