"""The README stays true: its model table matches the registry, its Quick start has two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_model_table_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/update_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_quick_start_has_exactly_two_commands() -> None:
    text = (ROOT / "README.md").read_text() + "\n# end"
    section = re.search(r"^#+ *quick ?start.*?$(.*?)(?=^#+ )", text, re.I | re.M | re.S)
    assert section, "README.md needs a Quick start section"
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section.group(1), re.S)
    commands = [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert len(commands) == 2, commands
    assert "pytest" in commands[1]
