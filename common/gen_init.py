"""Marks every folder of freshly generated stubs as a typed package (run by `make proto`)."""

from __future__ import annotations

import sys
from pathlib import Path

_INIT = '"""Generated from proto/ by `make proto`; do not edit."""\n'


def mark_packages(root: Path) -> None:
    """Write an `__init__.py` and a `py.typed` marker into `root` and each folder below it."""
    for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if folder.name == "__pycache__":
            continue
        (folder / "__init__.py").write_text(_INIT)
        (folder / "py.typed").write_text("")


if __name__ == "__main__":
    mark_packages(Path(sys.argv[1]))
