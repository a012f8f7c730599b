"""What a non-editable install (`pip install .`, a wheel) carries: every data file the package
reads at run time must be declared in pyproject.toml's package-data, or installs lose it."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):
    pytest.skip("tomllib (reading pyproject.toml) is in Python 3.11+", allow_module_level=True)
import tomllib  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-data"]


def _installed_as_data(path: Path, declared: dict[str, list[str]]) -> bool:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "weights":
        package, name = "modelzoo._shipped", rel.name
    else:
        package, name = ".".join(rel.parent.parts), rel.name
    return any(fnmatch.fnmatch(name, pattern) for pattern in declared.get(package, []))


def test_every_data_file_of_the_package_is_declared() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "modelzoo", "weights"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    data = [ROOT / p for p in tracked if not p.endswith((".py", ".pyi"))]
    assert data, "git ls-files found no data files: run the tests from a checkout"
    declared = _declared()
    missing = [str(p.relative_to(ROOT)) for p in data if not _installed_as_data(p, declared)]
    assert missing == [], "add them to [tool.setuptools.package-data] in pyproject.toml"
