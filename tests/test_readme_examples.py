"""Every Python and shell example in README.md runs, as a user would paste it, and learns.

Each ``##`` section's code blocks run in order, in a fresh working directory that holds a
link to the repository's ``configs/`` and ``scripts/`` (the commands name recipes as
``configs/...`` and results scripts as ``scripts/...``), with
``MODELZOO_HOME`` pointing at a fresh cache and ``MODELZOO_OFFLINE=1`` (nothing may need the
network). The test changes the examples only in the ways README's "Development" section
documents:

- placeholder paths (``path/to/image_folder``, ``path/to/table.csv``) are replaced by small
  files written here in the real formats;
- the few commands listed in ``SKIPPED`` are not run, each for the reason given;
- ``SHORTER`` cuts long training budgets with the command's own overrides.

Training examples must learn: ``FLOORS`` states, per section, what their output must reach.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Sections whose commands are checked elsewhere, and lines never run here, with the reason.
SKIPPED_SECTIONS = {
    "Quick start": "installs the package; tests/test_quickstart.py runs its fine-tune command "
    "with the exact arguments and .ci/run runs its test command",
}
SKIPPED = {
    "python -m pytest": "the test suite itself (it would run recursively)",
    "ruff ": "lint and format, run by developers and CI",
}
# (section, pattern, replacement): shorter budgets through the command's own options.
SHORTER: list[tuple[str, str, str]] = [
    # The 56-layer recipe's 5 epochs from the CLI (the Python example above it is what must
    # learn, checked by FLOORS); 20 steps show the command and its overrides work.
    (
        "Training",
        r"resnet56_digits\.yaml train\.epochs=5",
        "resnet56_digits.yaml train.max_steps=20",
    ),
    # Fine-tuning on the stand-in image folder: 3 epochs (1 frozen) run every stage of the
    # command; that fine-tuning learns is checked by tests/test_quickstart.py and test_finetune.
    (
        "Pretrained weights and transfer learning",
        r"--epochs 10 --freeze-epochs 2",
        "--epochs 3 --freeze-epochs 1",
    ),
]
# (section, regex with one number group, the floor it must reach): learning, not just running.
FLOORS: list[tuple[str, str, float]] = [
    ("Training", r"'accuracy': ([0-9.]+)", 0.9),
    # CartPole's 100-episode evaluation must reach the level the recipe claims (475); every
    # return printed (the replays, the shipped LunarLander policy) must reach LunarLander's 200.
    ("Reinforcement learning", r'"mean_return": ([0-9.]+)[^{}]*"episodes": 100\b', 475.0),
    ("Reinforcement learning", r'"mean_return": ([0-9.]+)', 200.0),
]
# Sections that continue what an earlier section made (e.g. its run directory).
NEEDS = {"Pretrained weights and transfer learning": "Training"}
# Sections that talk to a service: the test starts a stand-in speaking its protocol.
SERVICES = {"The Hugging Face Hub": "hub"}
TIMEOUT_S = 600


@dataclass(frozen=True)
class Block:
    section: str
    language: str
    code: str
    line: int


def readme_blocks() -> list[Block]:
    """The python and bash blocks of README.md, with the ``##`` section each is in."""
    blocks, section = [], "Introduction"  # the blocks before the first ## heading
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        match = re.match(r"^```(\w*)\s*$", line)
        if match:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if match.group(1) in ("python", "bash"):
                code = "\n".join(lines[i + 1 : end])
                blocks.append(Block(section, match.group(1), code, i + 1))
            i = end
        i += 1
    return blocks


def _sections() -> list[str]:
    seen: dict[str, None] = {}
    for block in readme_blocks():
        if block.section not in SKIPPED_SECTIONS:
            seen[block.section] = None
    return list(seen)


def _write_placeholders(cwd: Path) -> None:
    """Small stand-ins for the paths the README leaves to the reader, in the real formats."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = cwd / "path/to/image_folder"
    for label in range(3):
        (folder / f"class_{label}").mkdir(parents=True, exist_ok=True)
        images = digits.images[digits.target == label][:12]
        for k, image in enumerate(images):
            pixels = (image / 16 * 255).astype(np.uint8)
            Image.fromarray(pixels).resize((32, 32)).save(folder / f"class_{label}/{k}.png")
    table = cwd / "path/to/table.csv"
    header = ",".join([f"f{k}" for k in range(64)] + ["label"])
    rows = [
        ",".join([*(f"{v:g}" for v in x), str(int(y))])
        for x, y in zip(digits.data[:300], digits.target[:300])
    ]
    table.write_text(header + "\n" + "\n".join(rows) + "\n")


def _start_hub(cwd: Path) -> tuple[dict[str, str], Any]:
    """The loopback stand-in of the Hugging Face Hub (tests/weights/hub_server.py), holding a
    timm-layout repo written by timm itself; the environment that points the Hub client at it
    with a token that may push."""
    import importlib.util

    import timm
    import torch
    from timm.models import save_for_hf

    spec = importlib.util.spec_from_file_location(
        "hub_server", ROOT / "tests/weights/hub_server.py"
    )
    hub_server = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("hub_server", hub_server)
    spec.loader.exec_module(hub_server)
    state, stop = hub_server.start_hub()
    state.writers.add("readme-writer")
    torch.manual_seed(0)
    folder = cwd / "timm-repo"
    save_for_hf(timm.create_model("vit_tiny_patch16_224", pretrained=False), str(folder))
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    state.add_repo("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", files)
    home = cwd / ".hf"
    env = {
        "HF_ENDPOINT": state.endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_TOKEN": "readme-writer",
        "HF_HUB_DISABLE_XET": "1",  # the stand-in stores uploads with LFS
    }
    return env, stop


def _prepare(cwd: Path) -> dict[str, str]:
    cwd.mkdir(parents=True, exist_ok=True)
    for folder in ("configs", "scripts"):
        if not (cwd / folder).exists():
            (cwd / folder).symlink_to(ROOT / folder)
        _write_placeholders(cwd)
    env = dict(os.environ)
    env.update(
        MODELZOO_HOME=str(cwd / ".modelzoo"),
        MODELZOO_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
    )
    return env


def _script(block: Block) -> str:
    if block.language == "python":
        return block.code
    lines = []
    for line in block.code.splitlines():
        if any(line.strip().startswith(prefix) for prefix in SKIPPED):
            continue
        for section, pattern, replacement in SHORTER:
            if section == block.section:
                line = re.sub(pattern, replacement, line)
        lines.append(line)
    return "set -euo pipefail\n" + "\n".join(lines)


def run_section(section: str, cwd: Path) -> str:
    """Run every block of a README section in ``cwd``; return their combined stdout."""
    env = _prepare(cwd)
    stop = None
    if SERVICES.get(section) == "hub":
        hub_env, stop = _start_hub(cwd)
        env.update(hub_env)
        env.pop("MODELZOO_OFFLINE")  # it would switch the Hub client off too
    try:
        return _run_blocks(section, cwd, env)
    finally:
        if stop is not None:
            stop()


def _run_blocks(section: str, cwd: Path, env: dict[str, str]) -> str:
    outputs = []
    for block in (b for b in readme_blocks() if b.section == section):
        command = [sys.executable, "-c"] if block.language == "python" else ["bash", "-c"]
        result = subprocess.run(
            [*command, _script(block)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert result.returncode == 0, (
            f"README.md line {block.line} ({section}, {block.language}) failed:\n"
            f"{result.stderr[-4000:]}"
        )
        outputs.append(result.stdout)
    return "\n".join(outputs)


def _check_floors(section: str, out: str) -> None:
    for floor_section, pattern, floor in FLOORS:
        if floor_section != section:
            continue
        values = [float(v) for v in re.findall(pattern, out)]
        assert values, f"{section}: the output shows no {pattern!r}:\n{out[-2000:]}"
        assert min(values) >= floor, f"{section}: {pattern} = {values}, floor {floor}"


# A section another one continues runs (and is checked) as the first part of that one's test.
@pytest.mark.parametrize("section", [s for s in _sections() if s not in NEEDS.values()])
def test_readme_section_runs(section: str, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    if section in NEEDS:
        _check_floors(NEEDS[section], run_section(NEEDS[section], cwd))
    _check_floors(section, run_section(section, cwd))


def test_every_floor_and_shortening_names_a_section() -> None:
    sections = set(_sections())
    for section, *_ in [*FLOORS, *SHORTER]:
        assert section in sections, f"README has no section {section!r} with examples"
    assert set(NEEDS) <= sections and set(NEEDS.values()) <= sections
