"""The encryption key at rest: private, refused when exposed, apart from the data (issue 20, 2)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from common.processes import ManagedProcess
from scheduler_svc.config import SchedulerSettings
from scheduler_svc.keys import KeyFileExposed, load_or_create_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_generated_key_is_private_in_a_private_folder(tmp_path: Path) -> None:
    """The key file is 0600 in a 0700 folder it created, and reads back the same key."""
    key_file = tmp_path / "keys" / "deeper" / "encryption.key"
    key = load_or_create_key(None, key_file)
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700
    assert mode(key_file.parent.parent) == 0o700
    assert load_or_create_key(None, key_file) == key


@pytest.mark.parametrize("exposed", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, exposed: int) -> None:
    """An existing key readable (or writable) by group or others is refused, naming the fix."""
    key_file = tmp_path / "encryption.key"
    key_file.write_text(base64.b64encode(b"k" * 32).decode())
    key_file.chmod(exposed)
    with pytest.raises(KeyFileExposed, match="chmod 600"):
        load_or_create_key(None, key_file)
    key_file.chmod(0o600)
    assert load_or_create_key(None, key_file) == b"k" * 32


def test_by_default_the_key_is_kept_apart_from_the_data() -> None:
    """The default key file is not under ./data, where the registry and its ciphertexts are."""
    key_file = SchedulerSettings.from_env({}).encryption_key_file
    assert not key_file.resolve().is_relative_to(Path("data").resolve())


async def test_the_scheduler_does_not_start_on_an_exposed_key(tmp_path: Path) -> None:
    """As a process: the scheduler exits before serving and says why."""
    key_file = tmp_path / "encryption.key"
    key_file.write_text(base64.b64encode(b"k" * 32).decode())
    key_file.chmod(0o644)
    scheduler = ManagedProcess(
        "scheduler",
        "scheduler_svc",
        {"SCHEDULER_PORT": "0", "ENCRYPTION_KEY_FILE": str(key_file), "LOG_FORMAT": "json"},
    )
    with pytest.raises(RuntimeError, match="exited before it was ready"):
        await scheduler.start(timeout=60)
    assert await scheduler.stop() != 0
    assert "chmod 600" in scheduler.output()


def test_a_key_at_its_old_default_place_is_still_used(tmp_path: Path) -> None:
    """Upgrading must not generate a new key (every stored API key would be lost)."""
    legacy = tmp_path / "data" / "encryption.key"
    legacy.parent.mkdir()
    legacy.write_text(base64.b64encode(b"o" * 32).decode())
    legacy.chmod(0o600)
    new_place = tmp_path / "secrets" / "encryption.key"
    assert load_or_create_key(None, new_place, legacy) == b"o" * 32
    assert not new_place.exists()
    legacy.chmod(0o644)
    with pytest.raises(KeyFileExposed):
        load_or_create_key(None, new_place, legacy)
