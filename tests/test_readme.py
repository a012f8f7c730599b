"""The README stays true: its model table matches the registry, its Quick start has two commands."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "update_readme", ROOT / "scripts/update_readme.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_table_is_current() -> None:
    script = _load_script()
    text = (ROOT / "README.md").read_text()
    assert script.render(text) == text, "run: python scripts/update_readme.py"


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
