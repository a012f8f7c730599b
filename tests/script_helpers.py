"""The project's scripts in tests: run as a user does (a subprocess with one torch thread), or
imported as a module to call its functions.

The tests of the published results import this module as ``script_helpers`` (``tests/``
is on ``sys.path`` through its ``conftest.py``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "load_script", "run_script"]


def run_script(script: str | Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``script`` (a path, or a name under ``scripts/``) with ``args``; output captured."""
    path = Path(script)
    if not path.is_absolute():
        path = ROOT / "scripts" / path
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


def load_script(name: str):
    """Import ``scripts/<name>.py`` as the module ``name`` (registered in ``sys.modules``, where
    dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
