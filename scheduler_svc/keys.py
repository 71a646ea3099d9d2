"""API keys at rest: AES-256-GCM ciphertext bound to the user's auth id.

Only the scheduler holds the encryption key (from ``ENCRYPTION_KEY``, or generated once into a
file readable only by its owner). The userstore stores ciphertext it cannot open. The auth id is
the associated data, so a ciphertext copied onto another user's row does not decrypt.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.files import FILE_MODE, open_to_others, private_dir

log = logging.getLogger(__name__)

VERSION = b"\x01"
NONCE_BYTES = 12


class KeyDecryptError(ValueError):
    """A ciphertext does not open with this encryption key (wrong key, or tampered)."""


class KeyBox:
    """Encrypts and decrypts API keys with one AES-256 key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the encryption key must be 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, api_key: str, auth_id: str) -> bytes:
        """Version byte, random nonce, then the sealed key."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, api_key.encode(), auth_id.encode())

    def decrypt(self, ciphertext: bytes, auth_id: str) -> str:
        """The API key, or KeyDecryptError."""
        if len(ciphertext) < 1 + NONCE_BYTES + 16 or ciphertext[:1] != VERSION:
            raise KeyDecryptError("unknown ciphertext format")
        nonce = ciphertext[1 : 1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(
                nonce, ciphertext[1 + NONCE_BYTES :], auth_id.encode()
            ).decode()
        except InvalidTag:
            raise KeyDecryptError("ciphertext does not match this encryption key") from None


def secret_context(auth_id: str) -> str:
    """The associated data of an upload password: its user, and never an API key's context."""
    return f"{auth_id}/upload-password"


class KeyFileExposed(ValueError):
    """The key file can be read by users other than its owner: refused, not used."""


# Where versions before the key moved out of the data folder generated it.
LEGACY_KEY_FILE = Path("./data/encryption.key")


def load_or_create_key(
    configured: bytes | None, key_file: Path, legacy: Path | None = None
) -> bytes:
    """The configured key; else the one in `key_file`, created once (mode 0600) if missing.

    An existing key file that other users may read is refused (KeyFileExposed): whoever reads
    it reads every stored API key, and a warning in a log is too easy to miss. The fix is one
    chmod, named in the error. `legacy` is the key's old default place: used (with a warning to
    move it) when `key_file` does not exist, since a new key would lock every stored API key.
    """
    if configured is not None:
        return configured
    if not key_file.exists() and legacy is not None and legacy.exists():
        log.warning(
            "using the encryption key at its old place, beside the data it protects: move it "
            "to ENCRYPTION_KEY_FILE (or set ENCRYPTION_KEY) and back it up apart from the data",
            extra={"key_file": str(legacy), "move_to": str(key_file)},
        )
        key_file = legacy
    if key_file.exists():
        exposed = open_to_others(key_file)
        if exposed:
            raise KeyFileExposed(
                f"{key_file} is readable or writable by other users (mode "
                f"{oct(exposed | 0o600)[2:]}); run `chmod 600 {key_file}` (and check who copied "
                "it), or set ENCRYPTION_KEY instead"
            )
        raw = key_file.read_text().strip()
        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError:
            raise ValueError(f"{key_file} does not hold base64") from None
        if len(key) != 32:
            raise ValueError(f"{key_file} must hold base64 of 32 bytes")
        return key
    private_dir(key_file.parent)
    key = secrets.token_bytes(32)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
    log.warning(
        "ENCRYPTION_KEY is not set: generated a new key; back up this file (apart from the "
        "data: together they open every stored API key), without it the stored API keys "
        "cannot be read",
        extra={"key_file": str(key_file)},
    )
    return key
