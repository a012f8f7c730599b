"""Running a results script the way a user does: a subprocess with one torch thread.

The tests of the published results import this module as ``script_helpers`` (``tests/``
is on ``sys.path`` through its ``conftest.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "run_script"]


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
