"""The image installs the project with `pip install .`; that install must hold every module.

Development uses an editable install, which imports straight from the tree and so never notices a
package missing from pyproject.toml's list; the image would then fail at its first import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.deploy.deployfiles import DOCKERFILE, ROOT, check_image

# pyproject.toml maps the generated stubs' folder to the `torbox` package (their import name).
GENERATED = "common/gen/"


def builder_sources() -> list[str]:
    """What the Dockerfile's builder stage copies from the build context before `pip install .`."""
    module = check_image()
    instructions = module.dockerfile_instructions(DOCKERFILE.read_text())
    first_stage_end = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"][1]
    sources: list[str] = []
    for keyword, rest in instructions[:first_stage_end]:
        if keyword == "COPY":
            sources += rest.split()[:-1]
    return sources


def test_installed_wheel_contains_every_source_module(tmp_path: Path) -> None:
    """A wheel built from exactly what the image copies holds every .py and .pyi of the tree."""
    context = tmp_path / "context"
    expected: set[str] = set()
    for source in builder_sources():
        path = ROOT / source
        target = context / source
        if path.is_dir():
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            for file in path.rglob("*"):
                if file.suffix in (".py", ".pyi") and "__pycache__" not in file.parts:
                    name = file.relative_to(ROOT).as_posix()
                    expected.add(name.removeprefix(GENERATED))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    assert expected, "the builder stage copies no package"

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(context),
        ],
        check=True,
        cwd=tmp_path,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = set(archive.namelist())
    missing = sorted(expected - packaged)
    assert missing == [], f"pyproject.toml's package list leaves these out of the image: {missing}"
