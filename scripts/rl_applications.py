"""RL applications: Atari, MuJoCo, Box2D; SAC and TD3; side by side with Stable-Baselines3.

    python scripts/rl_applications.py --only sac_halfcheetah_vs_sb3 [--runs-dir DIR]
    python scripts/rl_applications.py --only ppo_lunarlander --ship
    python scripts/rl_applications.py --report           # rewrite the markdown from the results
    python scripts/rl_applications.py --check            # re-play every shipped policy (fast)

Every section below trains one recipe of configs/rl/ for the budget stated in its
row (``steps``: the budget actually run, often far below the recipe's, because
this machine has two shared CPU cores), then plays ``REPORT_EPISODES`` episodes
with deterministic actions from seeds that neither training (``train.seed + i``)
nor the choice of best.ckpt (``train.seed + 10000 + i``) used:
``REPORT_SEED + train.seed + i``. Wrapped environments (Atari, CarRacing) are
scored on full games with the game's own, unclipped score. Runs that evaluate
periodically are scored on best.ckpt, as ``modelzoo evaluate`` does, and on the
final policy beside it.

Sections with ``sb3`` train Stable-Baselines3's SAC or PPO (scripts/_sb3_side.py)
with the same settings on the same environment (the same gymnasium wrappers) in the
same process, interleaved: both sides train in ``chunks`` turns, alternating which goes first,
so that both see the same machine load; modelzoo's side resumes from its
checkpoint at each turn (bit-exact, so the run equals an uninterrupted one) and
its resume time is not counted. Throughput is env steps per second of training
(periodic evaluation and checkpoints included for modelzoo, whose runs write them).

Each section writes ``benchmarks/rl_applications/<key>.json`` with per-seed
values and learning curves, a learning-curve PNG, a strip of frames and a short
GIF of the policy playing; ``benchmarks/rl_applications.md`` is rebuilt from all
of them. ``--ship`` ships the section's policy through
``modelzoo.weights.add_shipped_weight_set`` with a card whose metrics are played
from the shipped file; ``--check`` plays every shipped policy of ``SECTIONS``
again on its card's episodes and compares (tests/train/test_play.py runs it).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
for _path in (ROOT, SCRIPTS):  # run from a checkout without installing; `_sb3_side` is here
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

ROOT_OUT = ROOT  # the folder holding benchmarks/ (see --out-dir)
OUT_DIR = ROOT / "benchmarks" / "rl_applications"
REPORT = ROOT / "benchmarks" / "rl_applications.md"
REPORT_SEED = 30_000  # + train.seed: apart from training (seed + i) and selection (10000 + ...)
REPORT_EPISODES = 10
LICENSE = "BSD-3-Clause"
GIF_FRAMES = 120  # frames of the GIF per environment (every other rendered frame)

_logger = logging.getLogger("rl_applications")


@dataclass(frozen=True)
class Section:
    """One measured experiment.

    Attributes:
        key: the ``--only`` name.
        config: the recipe in configs/rl/.
        title: the row's title.
        steps: env steps run here (the recipe's own budget is in its file).
        threshold: the target return (None: no target).
        overrides: recipe overrides beyond the budget (each stated in the report).
        sb3: ``"sac"`` or ``"ppo"``: also train SB3's algorithm side by side.
        chunks: turns of the interleaving.
        ship: the tag of the shipped weight set (``arch.tag``), if any.
        card_episodes: episodes on the shipped card (few for long Atari games).
        description: the card's description.
    """

    key: str
    config: str
    title: str
    steps: int
    threshold: float | None
    overrides: tuple[str, ...] = ()
    sb3: str | None = None
    chunks: int = 8
    ship: str | None = None
    card_episodes: int = 10
    description: str = ""


SECTIONS = [
    Section(
        "ppo_lunarlander",
        "ppo_lunarlander.yaml",
        "PPO, LunarLander-v3",
        1_000_000,
        200.0,
        ship="lunarlander",
        description="PPO actor-critic (separate 64-64 tanh MLPs) on LunarLander-v3 "
        "(configs/rl/ppo_lunarlander.yaml, rl-zoo's settings).",
    ),
    Section(
        "dqn_lunarlander",
        "dqn_lunarlander.yaml",
        "DQN, LunarLander-v3",
        200_000,
        200.0,
        ship="lunarlander",
        description="DQN Q-network (256-256 ReLU MLP) on LunarLander-v3 "
        "(configs/rl/dqn_lunarlander.yaml, rl-zoo's settings), best.ckpt chosen on its own "
        "evaluation seeds.",
    ),
    Section(
        "sac_halfcheetah_vs_sb3",
        "sac_halfcheetah.yaml",
        "SAC, HalfCheetah-v5",
        150_000,
        9000.0,
        overrides=("train.eval_every=null",),
        sb3="sac",
        ship="halfcheetah",
        description="SAC squashed-Gaussian actor and twin critics (256-256 ReLU) on "
        "HalfCheetah-v5, trained for 150k of the recipe's 1M steps (this machine's budget; "
        "see benchmarks/rl_applications.md).",
    ),
    Section(
        "sac_reacher",
        "sac_reacher.yaml",
        "SAC, Reacher-v5 (manipulation)",
        50_000,
        -3.75,  # gymnasium's reward_threshold for Reacher
        overrides=("task.learning_starts=1000", "train.eval_every=2500"),
        ship="reacher",
        description="SAC squashed-Gaussian actor and twin critics (256-256 ReLU) reaching "
        "targets with the two-joint arm of Reacher-v5.",
    ),
    Section(
        "sac_hopper",
        "sac_hopper.yaml",
        "SAC, Hopper-v5",
        60_000,
        2500.0,
        overrides=("task.learning_starts=1000", "train.eval_every=2500"),
    ),
    Section(
        "td3_halfcheetah",
        "td3_halfcheetah.yaml",
        "TD3, HalfCheetah-v5",
        60_000,
        None,
        overrides=("task.learning_starts=1000", "train.eval_every=2500"),
    ),
    Section(
        "ppo_halfcheetah",
        "ppo_halfcheetah.yaml",
        "PPO, HalfCheetah-v5",
        100_000,
        None,
    ),
    Section(
        "ppo_breakout_vs_sb3",
        "ppo_breakout.yaml",
        "PPO, Breakout (Atari)",
        262_144,
        None,
        overrides=("train.eval_every=null",),
        sb3="ppo",
        ship="breakout",
        card_episodes=4,
        description="PPO Nature-CNN actor-critic on Atari Breakout (BreakoutNoFrameskip-v4 with "
        "the standard wrappers, 4 frames stacked), trained for 262,144 agent steps (2^20 "
        "emulator frames), a fortieth of the recipe's budget.",
    ),
    Section(
        "ppo_carracing",
        "ppo_carracing.yaml",
        "PPO, CarRacing-v3 (pixels)",
        131_072,
        700.0,
        overrides=("train.eval_every=null",),
        ship="carracing",
        card_episodes=4,
        description="PPO Nature-CNN actor-critic with a Gaussian over (steer, gas, brake) on "
        "CarRacing-v3 from 84x84 grey frames (4 stacked), trained for 131,072 of the recipe's 4M "
        "steps (this machine's budget).",
    ),
]
BY_KEY = {s.key: s for s in SECTIONS}


# --- running a section -------------------------------------------------------------------


def section_recipe(section: Section, seed: int, extra: tuple[str, ...] = ()) -> Any:
    """The section's recipe at its budget, with its overrides and then ``extra``."""
    from modelzoo.config import load_recipe

    return load_recipe(
        ROOT / "configs/rl" / section.config,
        [
            f"task.total_timesteps={section.steps}",
            f"train.seed={seed}",
            "train.progress=false",
            *section.overrides,
            *extra,
        ],
    )


def _rows(run: Path) -> list[dict[str, Any]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _recipe_match(run: Path, recipe: Any) -> str | None:
    """How the run directory's run relates to this recipe: ``"same"`` (same model, data,
    task and seed), ``"smaller budget"`` (the same but for a smaller
    ``task.total_timesteps``), or None (another run, or none)."""
    import yaml

    config = run / "config.yaml"
    if not config.is_file():
        return None
    saved, wanted = yaml.safe_load(config.read_text()), recipe.to_dict()
    had, wants = saved["task"]["total_timesteps"], wanted["task"]["total_timesteps"]
    same_but_budget = (
        saved["model"] == wanted["model"]
        and saved["data"] == wanted["data"]
        and {**saved["task"], "total_timesteps": wants} == wanted["task"]
        and saved["train"].get("seed") == wanted["train"].get("seed")
    )
    if not same_but_budget or had > wants:
        return None
    return "same" if had == wants else "smaller budget"


def train_modelzoo(section: Section, seed: int, run: Path) -> dict[str, Any]:
    """Train (or reuse, or continue) the section's recipe; returns timing facts.

    A finished run of the same recipe is reused. An unfinished one (a process stopped
    part-way, e.g. a long Atari run that spans several sittings) is continued exactly from
    its last checkpoint; its wall clock is the sum of its sittings, each counted up to the
    checkpoint the next one continued from (the compute after it was lost, and so are its
    steps). ``sittings.json`` in the run directory records them, with each sitting's
    budget (``steps``).

    A run of the same recipe at a smaller budget (the section's ``steps`` raised since) is
    extended from its last checkpoint rather than started again: the steps it has are
    kept, and schedules that anneal over the budget (``anneal_lr``) run over the new one
    from there (as Stable-Baselines3's ``learn(..., reset_num_timesteps=False)`` does), so
    the result differs from a run trained for the larger budget from the start.
    """
    from modelzoo.train.recipes import train_recipe
    from modelzoo.train.rl.runner import resume_rl

    recipe = section_recipe(section, seed)
    match = _recipe_match(run, recipe)
    if match == "same" and (run / "test_metrics.json").is_file():
        wall = _sittings_wall(run)
        if wall is None:
            # Reused: the wall clock from the run's own files (config.yaml is written as
            # training starts, the last checkpoint as it ends), evaluations included as in fit().
            wall = (run / "checkpoints/last.ckpt").stat().st_mtime - (
                run / "config.yaml"
            ).stat().st_mtime
        steps = int(float(_rows(run)[-1]["timesteps"]))
        print(f"[{section.key}] reusing the finished run in {run}", flush=True)
        return {"timesteps": steps, "wall_s": wall}
    last = run / "checkpoints/last.ckpt"
    if last.is_file() and match is not None:
        sittings = _close_sittings(run, last)
        sittings.append({"started": time.time(), "steps": section.steps})
        write_sittings(run, sittings)
        if match == "smaller budget":  # the end-of-run files belong to the old budget
            (run / "test_metrics.json").unlink(missing_ok=True)
            print(f"[{section.key}] seed {seed}: extending {run} to {section.steps} steps")
        print(f"[{section.key}] seed {seed}: continuing {run} from {last} ...", flush=True)
        trainer = resume_rl(recipe, run, last).trainer
    else:
        if run.exists():
            import shutil

            shutil.rmtree(run)
        run.mkdir(parents=True)
        write_sittings(run, [{"started": time.time(), "steps": section.steps}])
        print(f"[{section.key}] seed {seed}: training {section.steps} steps ...", flush=True)
        trainer = train_recipe(recipe, run).trainer
    sittings = read_sittings(run)
    sittings[-1]["wall_s"] = trainer.wall_time
    write_sittings(run, sittings)
    return {"timesteps": trainer.timesteps, "wall_s": _sittings_wall(run)}


def read_sittings(run: Path) -> list[dict[str, float]]:
    """The sittings of a run: each one's start (``started``, epoch seconds) and, once it is
    over, its wall clock (``wall_s``)."""
    path = run / "sittings.json"
    return json.loads(path.read_text()) if path.is_file() else []


def write_sittings(run: Path, sittings: list[dict[str, float]]) -> None:
    """Record a run's sittings (see :func:`read_sittings`)."""
    (run / "sittings.json").write_text(json.dumps(sittings, indent=1) + "\n")


def _close_sittings(run: Path, last: Path) -> list[dict[str, float]]:
    """The sittings so far, a stopped one counted up to the checkpoint continued from."""
    sittings = read_sittings(run)
    for sitting in sittings:
        if "wall_s" not in sitting:
            sitting["wall_s"] = max(last.stat().st_mtime - sitting["started"], 0.0)
    return sittings


def _sittings_wall(run: Path) -> float | None:
    sittings = read_sittings(run)
    if not sittings or any("wall_s" not in s for s in sittings):
        return None
    return float(sum(s["wall_s"] for s in sittings))


def score(policy: Any, seed: int, episodes: int = REPORT_EPISODES) -> dict[str, Any]:
    from modelzoo.train.rl.play import play

    result = play(policy, episodes, REPORT_SEED + seed)
    return {"mean": result.mean_return, "std": result.std_return, "returns": result.returns}


def pictures(section: Section, policy: Any, seed: int) -> dict[str, str]:
    """A strip of frames and a short GIF of one evaluation episode; paths relative to ROOT."""
    from PIL import Image

    from modelzoo.train.rl.play import frame_strip, play, write_video

    result = play(policy, 1, REPORT_SEED + seed, keep_frames=True, max_frames=2 * GIF_FRAMES)
    frames = result.frames
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    strip = OUT_DIR / f"{section.key}_frames.png"
    Image.fromarray(frame_strip(frames)).save(strip)
    small = []
    for frame in frames[::2][:GIF_FRAMES]:
        image = Image.fromarray(frame)
        scale = 160 / image.height
        small.append(np.asarray(image.resize((round(image.width * scale), 160))))
    gif = write_video(small, OUT_DIR / f"{section.key}.gif", fps=15)
    return {"strip": str(strip.relative_to(ROOT_OUT)), "gif": str(gif.relative_to(ROOT_OUT))}


def run_section(section: Section, runs_dir: Path, seed: int, ship: bool) -> dict[str, Any]:
    from modelzoo.errors import ConfigError
    from modelzoo.train.rl.play import load_policy
    from modelzoo.train.rl.runner import plot_learning_curves

    run = runs_dir / f"{section.key}-seed{seed}"
    sb3_result = None
    if section.sb3:
        from _sb3_side import train_interleaved

        ours, sb3_result, sb3_model = train_interleaved(
            lambda extra: section_recipe(section, seed, extra),
            section.sb3,
            section.steps,
            section.chunks,
            seed,
            run,
            section.key,
        )
    else:
        ours = train_modelzoo(section, seed, run)
    best = run / "checkpoints/best.ckpt"
    chosen = load_policy(run)
    result: dict[str, Any] = {
        "key": section.key,
        "title": section.title,
        "recipe": f"configs/rl/{section.config}",
        "budget_steps": section.steps,
        "overrides": list(section.overrides),
        "threshold": section.threshold,
        "seed": seed,
        "timesteps": ours["timesteps"],
        "wall_s": ours["wall_s"],
        "steps_per_s": ours["timesteps"] / max(ours["wall_s"], 1e-9),
        "checkpoint": "best" if best.is_file() else "last",
        "report_seeds": [REPORT_SEED + seed, REPORT_SEED + seed + REPORT_EPISODES - 1],
        "score": score(chosen, seed),
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared)",
    }
    from modelzoo.config import load_recipe

    result["recipe_steps"] = int(
        load_recipe(ROOT / "configs/rl" / section.config).task["total_timesteps"]
    )
    if best.is_file():
        result["final_score"] = score(load_policy(run, run / "checkpoints/last.ckpt"), seed)
    rows = _rows(run)
    curves = {"modelzoo": rows}
    if sb3_result is not None:
        from _sb3_side import sb3_policy
        from stable_baselines3 import __version__ as sb3_version

        theirs = sb3_policy(sb3_model, chosen)
        result["sb3"] = {
            "version": sb3_version,
            "timesteps": sb3_result["timesteps"],
            "wall_s": sb3_result["wall_s"],
            "steps_per_s": sb3_result["timesteps"] / max(sb3_result["wall_s"], 1e-9),
            "score": score(theirs, seed),
            "rows": sb3_result["rows"],
        }
        curves[f"SB3 {section.sb3.upper()}"] = sb3_result["rows"]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    curve = OUT_DIR / f"{section.key}_curve.png"
    plot_learning_curves(
        {f"{k} seed {seed}": v for k, v in curves.items()}, curve, threshold=section.threshold
    )
    result["curve"] = str(curve.relative_to(ROOT_OUT))
    result["curve_rows"] = [
        {k: r.get(k) for k in ("timesteps", "mean_return", "val_mean_return") if r.get(k)}
        for r in rows
    ]
    path = OUT_DIR / f"{section.key}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")  # the numbers first: pictures may fail
    try:
        result.update(pictures(section, chosen, seed))
    except ConfigError as err:
        print(f"[{section.key}] no pictures: {err}", flush=True)
    if ship and section.ship:
        result["shipped"] = ship_policy(section, run, seed)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"[{section.key}] {result['timesteps']} steps in {result['wall_s']:.0f} s "
        f"({result['steps_per_s']:.0f}/s): return {result['score']['mean']:.1f} "
        f"+- {result['score']['std']:.1f}",
        flush=True,
    )
    return result


# --- shipping and checking ------------------------------------------------------------------


def ship_policy(section: Section, run: Path, seed: int) -> str:
    """Ship the run's chosen policy (best.ckpt, else last.ckpt) with a card played from the file."""
    from modelzoo.train.rl.envs import GymDataConfig, RunningMeanStd
    from modelzoo.train.rl.play import load_policy, play, policy_card_spec
    from modelzoo.weights import WeightSet, add_shipped_weight_set, save_weights

    policy = load_policy(run)
    recipe = section_recipe(
        section,
        seed,
        (f"task.eval_episodes={section.card_episodes}", f"task.eval_seed={REPORT_SEED + seed}"),
    )
    model = policy.model
    arch = recipe.model["name"]
    data = GymDataConfig.from_dict(recipe.data)
    obs_rms = policy.obs_rms if data.normalize_obs else None
    with tempfile.TemporaryDirectory() as tmp:
        file = save_weights(model.state_dict(), Path(tmp) / f"{arch}.{section.ship}.safetensors")
        result = play(policy, section.card_episodes, REPORT_SEED + seed)
        key = f"{data.env_id}/{section.card_episodes} episodes from seed {REPORT_SEED + seed}"
        card = WeightSet(
            arch=arch,
            tag=section.ship,
            files=(),
            model_kwargs=dict(model.init_kwargs),
            metrics={key: {"mean_return": result.mean_return, "std_return": result.std_return}},
            license=LICENSE,
            recipe=recipe.to_dict(),
            input_spec=policy_card_spec(data, obs_rms if obs_rms is not None else RunningMeanStd()),
            num_params=sum(p.numel() for p in model.parameters()),
            default=False,
            description=section.description
            + f" Trained by scripts/rl_applications.py --only {section.key} --ship "
            f"({section.steps:,} env steps).",
        )
        card = add_shipped_weight_set(card, file)
    # What ships is what was scored: the card's episodes played again from the shipped file.
    ((_, claimed, measured),) = check_shipped([card.name])
    if claimed != measured:
        raise SystemExit(f"{card.name}: the shipped file plays {measured}, the card says {claimed}")
    print(f"[{section.key}] shipped {card.name}: {card.metrics}", flush=True)
    return card.name


def ship_finished(section: Section, runs_dir: Path, seed: int) -> str:
    """Ship a section's finished run and record the name in its results file."""
    if not section.ship:
        raise SystemExit(f"{section.key} ships no policy")
    path = OUT_DIR / f"{section.key}.json"
    if not path.is_file():
        raise SystemExit(f"run the section first: no {path}")
    result = json.loads(path.read_text())
    result["shipped"] = ship_policy(section, runs_dir / f"{section.key}-seed{seed}", seed)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result["shipped"]


def shipped_names() -> list[str]:
    """The weight sets this script ships (``arch.tag``) that the manifest lists."""
    from modelzoo.weights import all_weight_sets

    tags = {s.ship for s in SECTIONS if s.ship}
    made = [
        ws for ws in all_weight_sets() if ws.tag in tags and "rl_applications" in ws.description
    ]
    return [ws.name for ws in made]


def check_shipped(names: list[str] | None = None) -> list[tuple[str, float, float]]:
    """Play each shipped policy on its card's episodes; returns (name, card, measured)."""
    from modelzoo.train.rl.play import load_policy, play
    from modelzoo.weights import get_weight_set

    out = []
    for name in names if names is not None else shipped_names():
        arch, _, tag = name.partition(".")
        ws = get_weight_set(arch, tag)
        (claimed,) = ws.metrics.values()
        policy = load_policy(name)
        result = play(policy)  # the card's episodes and seed
        out.append((name, float(claimed["mean_return"]), result.mean_return))
    return out


# --- report ------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def write_report() -> Path:
    """Rewrite benchmarks/rl_applications.md from the sections' results files."""
    REPORT.write_text(render_report())
    return REPORT


def render_report() -> str:
    """benchmarks/rl_applications.md as the sections' results files make it."""
    results = []
    for section in SECTIONS:
        path = OUT_DIR / f"{section.key}.json"
        if path.is_file():
            results.append((section, json.loads(path.read_text())))
    lines = [
        "# RL applications: Atari, MuJoCo, Box2D",
        "",
        "Written by `python scripts/rl_applications.py` (sections: `--only KEY`); do not edit by "
        "hand. Each row trains one recipe for the budget shown (the budget actually run on this "
        "machine, often far below the recipe's own), then plays "
        f"{REPORT_EPISODES} deterministic episodes from seeds "
        f"`{REPORT_SEED} + train.seed + i`, apart from the training copies (`train.seed + i`) "
        "and from the episodes that chose best.ckpt (`train.seed + 10000 + i`). Atari and "
        "CarRacing are scored on full games with the game's own, unclipped score. Atari "
        "steps are agent steps, each 4 emulator frames (the frame skip of gymnasium's "
        "`AtariPreprocessing`), so an Atari row's frames are four times its steps (CleanRL's "
        "10M-step budget, the recipe's, is 40M frames).",
        "",
        "Compute: two CPU cores shared with other work, one torch thread per run. The load "
        "differed from run to run (the rows were run on different days), so compare env steps "
        "per second only within a side-by-side pair: those ran in one process, interleaved turn "
        "by turn, and saw the same load.",
        "",
    ]
    rows = []
    for _, r in results:
        met = "-"
        if r["threshold"] is not None:
            met = "**yes**" if r["score"]["mean"] >= r["threshold"] else "no"
        final = r.get("final_score")
        rows.append(
            [
                r["title"],
                f"`{r['recipe']}`" + (f" ({', '.join(r['overrides'])})" if r["overrides"] else ""),
                f"{r['timesteps']:,} of {r['recipe_steps']:,}",
                "-" if r["threshold"] is None else f">= {r['threshold']:g}",
                f"{r['score']['mean']:.1f} ± {r['score']['std']:.1f} ({r['checkpoint']})",
                "-" if final is None else f"{final['mean']:.1f}",
                met,
                _fmt(r["score"]["returns"]),
                f"{r['wall_s']:.0f} s",
                f"{r['steps_per_s']:.0f}",
            ]
        )
    lines += [
        _table(
            [
                "experiment",
                "recipe (overrides)",
                "env steps run",
                "target",
                "return (checkpoint)",
                "final policy",
                "met",
                "per-episode returns",
                "wall clock",
                "env steps/s",
            ],
            rows,
        ),
        "",
    ]
    missing = [s for s in SECTIONS if s.key not in {r["key"] for _, r in results}]
    if missing:
        lines += [
            "Not run on this machine (no CPU time left): "
            + ", ".join(f"`--only {s.key}` ({s.title}, {s.steps:,} steps)" for s in missing)
            + ".",
            "",
        ]
    short = [r for _, r in results if r["timesteps"] < 0.5 * r["recipe_steps"]]
    if short:
        lines += [
            "Rows run far below their recipe's budget ("
            + "; ".join(
                f"{r['title']}: {100 * r['timesteps'] / r['recipe_steps']:.1f}%" for r in short
            )
            + ") say what that budget reached, not what the recipe reaches: the published "
            "targets (SAC HalfCheetah >= 9,000 and Hopper >= 2,500 at 1M steps, CarRacing >= 700, "
            "CleanRL's Atari scores at 10M steps) are out of reach of this machine's budget.",
            "",
        ]
    comparisons = [(s, r) for s, r in results if "sb3" in r]
    if comparisons:
        lines += ["## Side by side with Stable-Baselines3", ""]
        rows = []
        for _, r in comparisons:
            sb3 = r["sb3"]
            for side, v in (("modelzoo", r), (f"SB3 {sb3['version']}", sb3)):
                rows.append(
                    [
                        r["title"],
                        side,
                        f"{v['timesteps']:,}",
                        f"{v['score']['mean']:.1f} ± {v['score']['std']:.1f}",
                        _fmt(v["score"]["returns"]),
                        f"{v['wall_s']:.0f} s",
                        f"{v['steps_per_s']:.1f}",
                    ]
                )
            ratio = r["steps_per_s"] / max(sb3["steps_per_s"], 1e-9)
            rows.append(
                [r["title"], "**throughput modelzoo / SB3**", "", "", "", "", f"**{ratio:.2f}x**"]
            )
        lines += [
            _table(
                [
                    "experiment",
                    "library",
                    "env steps",
                    "return",
                    "per-episode",
                    "train time",
                    "steps/s",
                ],
                rows,
            ),
            "",
        ]
    lines += ["## Learning curves and the policies playing", ""]
    for _, r in results:
        lines += [
            f"### {r['title']}",
            "",
            f"![learning curve]({Path(r['curve']).relative_to('benchmarks')})",
            "",
        ]
        if "strip" in r:
            lines += [
                f"![frames]({Path(r['strip']).relative_to('benchmarks')}) "
                f"([GIF]({Path(r['gif']).relative_to('benchmarks')}))",
                "",
            ]
        if r.get("shipped"):
            lines += [f"Shipped as `{r['shipped']}`: `modelzoo play {r['shipped']}`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated section keys: " + ", ".join(BY_KEY))
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "rl_applications")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ship", action="store_true", help="ship the sections' policies")
    parser.add_argument(
        "--ship-only",
        action="store_true",
        help="ship the --only sections' finished runs (from --runs-dir) without training",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="where the results go (default: benchmarks/ of this checkout); lets a long run "
        "execute from a copy of the code while its results land in the checkout",
    )
    parser.add_argument("--check", action="store_true", help="re-play every shipped policy")
    parser.add_argument("--report", action="store_true", help="rewrite the markdown only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    if args.out_dir is not None:
        global OUT_DIR, REPORT, ROOT_OUT
        ROOT_OUT = args.out_dir.resolve().parent
        OUT_DIR = args.out_dir.resolve() / "rl_applications"
        REPORT = args.out_dir.resolve() / "rl_applications.md"
    if args.check:
        bad = 0
        for name, claimed, measured in check_shipped():
            same = math.isclose(claimed, measured, rel_tol=1e-9, abs_tol=1e-9)
            bad += not same
            verdict = "ok" if same else "DIFFERS"
            print(f"{name:<40} card {claimed:10.2f}  played {measured:10.2f}  {verdict}")
        return 1 if bad else 0
    if not args.report:
        if not args.only:
            parser.error("choose sections with --only (each trains for minutes to hours)")
        keys = args.only.split(",")
        unknown = [k for k in keys if k not in BY_KEY]
        if unknown:
            parser.error(f"unknown sections {unknown}; known: {', '.join(BY_KEY)}")
        for key in keys:
            if args.ship_only:
                ship_finished(BY_KEY[key], args.runs_dir, args.seed)
            else:
                run_section(BY_KEY[key], args.runs_dir, args.seed, args.ship)
    print(f"wrote {write_report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
