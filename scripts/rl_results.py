"""RL results: train the shipped RL recipes, score them on held-out episodes, compare PPO with SB3.

    OMP_NUM_THREADS=1 python scripts/rl_results.py [--out benchmarks/rl_results.md]
        [--runs-dir runs/rl_results] [--only ppo_cartpole,dqn_cartpole] [--sb3-repeats 3]
    python scripts/rl_results.py --report     # rewrite the markdown from the stored results
    python scripts/rl_results.py --check      # the markdown is what the stored results give

For each experiment below, every seed trains its recipe from configs/rl/ through
``train_recipe`` (one run after the other, in this process). Recipes that evaluate
periodically (``train.eval_every``) keep their best policy in ``checkpoints/best.ckpt``,
chosen on episodes of the *selection* seeds; the reported score is then measured by
``evaluate_run`` on 100 deterministic episodes of the *reporting* seeds, which neither
training nor the selection touched (the script checks that the two seed ranges are
disjoint and writes both into the file). The final policy's score is reported beside it.

PPO on CartPole-v1 is also trained by Stable-Baselines3 with the same settings (read
from the recipe), interleaved with modelzoo's own runs: repeat k trains seed k on both
sides, modelzoo first on even repeats and SB3 first on odd ones, in one process with one
torch thread, on the same environment (gymnasium's CartPole-v1, 8 copies stepped in
turn, seeded alike), for the same number of environment steps. Each side's training
time (``learn()`` alone: environments and networks are built before the clock starts)
is reported as min / median / max over the repeats, and its policies are scored with
the same protocol (8 copies seeded from the reporting seed, as both libraries'
``evaluate_policy`` do). SB3 is not a dependency of modelzoo: the comparison is skipped,
with a note, when it is not installed.

Writes the measured values to benchmarks/rl_results.json (``--only`` replaces its
experiments there and keeps the others), the markdown report rendered from them, and
learning-curve PNGs (benchmarks/rl_*.png).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import torch  # noqa: E402
from _common import ROOT, cpu_name, spread, table  # noqa: E402
from _sb3_side import ppo_kwargs  # noqa: E402

REPORT_EPISODES = 100
PROGRESS = ["train.progress=false", "train.tensorboard=false"]


@dataclass
class Experiment:
    key: str
    config: str
    title: str
    threshold: float
    seeds: tuple[int, ...]


EXPERIMENTS = [
    Experiment("ppo_cartpole", "ppo_cartpole.yaml", "PPO, CartPole-v1", 475.0, (0, 1, 2)),
    Experiment("a2c_cartpole", "a2c_cartpole.yaml", "A2C, CartPole-v1", 475.0, (0, 1, 2)),
    Experiment("dqn_cartpole", "dqn_cartpole.yaml", "DQN, CartPole-v1", 475.0, (0, 1, 2)),
    Experiment("ppo_pendulum", "ppo_pendulum.yaml", "PPO, Pendulum-v1", -300.0, (0,)),
    Experiment("ppo_acrobot", "ppo_acrobot.yaml", "PPO, Acrobot-v1", -100.0, (0,)),
]
SB3_EXPERIMENT = "ppo_cartpole"


@dataclass
class SeedResult:
    seed: int
    timesteps: int
    wall_s: float  # training time: the runner's fit() / SB3's learn()
    score: float  # mean return over REPORT_EPISODES, of the checkpoint `modelzoo evaluate` picks
    score_std: float
    final_score: float | None  # the final policy, when a best checkpoint was scored instead
    checkpoint: str
    selection: range | None  # seeds of the episodes that chose best.ckpt (None: no selection)
    reporting: range = field(default_factory=lambda: range(0))
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        return self.timesteps / self.wall_s

    def to_json(self) -> dict[str, Any]:
        """The stored values (the curve's rows are in the plots, not here)."""
        values = asdict(self)
        del values["rows"]
        for key in ("selection", "reporting"):
            r = getattr(self, key)
            values[key] = None if r is None else [r.start, r.stop - 1]
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> SeedResult:
        ranges = {
            k: None if values[k] is None else range(values[k][0], values[k][1] + 1)
            for k in ("selection", "reporting")
        }
        return cls(**{**values, **ranges})


def _seed_ranges(recipe: Any) -> tuple[range | None, range]:
    """(seeds of the episodes that choose best.ckpt, or None; seeds of the reported score).

    The runner's own ranges (``evaluation_seeds``): selection from the recipe as trained,
    the reported episodes with ``task.eval_episodes`` raised to REPORT_EPISODES, as
    ``evaluate_run`` plays them. Refuses overlapping ranges.
    """
    from dataclasses import replace

    from modelzoo.train.rl.runner import evaluation_seeds, parse_recipe

    data, task, _ = parse_recipe(recipe)
    trained = evaluation_seeds(task, recipe.train, data.num_envs)
    scored = evaluation_seeds(
        replace(task, eval_episodes=REPORT_EPISODES), recipe.train, data.num_envs
    )
    reporting = range(scored["reported"][0], scored["reported"][1] + 1)
    if not recipe.train.eval_every:
        return None, reporting
    selection = range(trained["selection"][0], trained["selection"][1] + 1)
    if set(selection) & set(reporting):
        raise SystemExit(f"selection seeds {selection} and reporting seeds {reporting} overlap")
    return selection, reporting


def run_modelzoo(exp: Experiment, seed: int, runs_dir: Path) -> SeedResult:
    """Train one seed of ``exp`` and score it (see the module docstring)."""
    from modelzoo.config import load_recipe
    from modelzoo.train.recipes import evaluate_run, train_recipe

    run = runs_dir / f"{exp.key}-seed{seed}"
    if run.exists():  # a fresh run every time: these directories are the script's own
        shutil.rmtree(run)
    recipe = load_recipe(ROOT / "configs/rl" / exp.config, [f"train.seed={seed}", *PROGRESS])
    selection, reporting = _seed_ranges(recipe)
    print(f"[{exp.key}] seed {seed}: training ...", flush=True)
    runner = train_recipe(recipe, run).trainer
    # The reported seeds are evaluate_run's default (train.seed + the runner's offset).
    overrides = [f"task.eval_episodes={REPORT_EPISODES}"]
    best = run / "checkpoints/best.ckpt"
    chosen = evaluate_run(run, overrides=overrides)  # best.ckpt when there is one
    final = None
    if best.is_file():
        final = evaluate_run(run, run / "checkpoints/last.ckpt", overrides)["mean_return"]
    with (run / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    result = SeedResult(
        seed,
        runner.timesteps,
        runner.wall_time,
        chosen["mean_return"],
        chosen["std_return"],
        final,
        "best" if best.is_file() else "last",
        selection,
        reporting,
        rows,
    )
    print(
        f"[{exp.key}] seed {seed}: {result.timesteps} steps in {result.wall_s:.0f} s, "
        f"return {result.score:.1f} +- {result.score_std:.1f}"
        + (f" (final policy {final:.1f})" if final is not None else ""),
        flush=True,
    )
    return result


# --- Stable-Baselines3 ---------------------------------------------------------------------


def sb3_settings() -> dict[str, Any]:
    """SB3 PPO arguments equal to configs/rl/ppo_cartpole.yaml (read from it)."""
    from modelzoo.config import load_recipe

    recipe = load_recipe(ROOT / "configs/rl/ppo_cartpole.yaml")
    if recipe.data["env_id"] != "CartPole-v1" or recipe.data.get("normalize_obs"):
        raise SystemExit("sb3_settings mirrors a CartPole-v1 recipe without normalization")
    return {
        "env_id": recipe.data["env_id"],
        "total_timesteps": recipe.task["total_timesteps"],
        "num_envs": recipe.data["num_envs"],
        "kwargs": ppo_kwargs(recipe),
    }


def sb3_version() -> str | None:
    try:
        import stable_baselines3
    except ImportError:
        return None
    return stable_baselines3.__version__


def run_sb3(seed: int) -> SeedResult:
    """Train SB3's PPO with the recipe's settings for one seed and score it like modelzoo's."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    class Curve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, Any]] = []

        def _on_rollout_end(self) -> None:
            infos = self.model.ep_info_buffer
            if infos:
                mean = statistics.fmean(i["r"] for i in infos)
                self.rows.append({"timesteps": self.num_timesteps, "mean_return": mean})

        def _on_step(self) -> bool:
            return True

    settings = sb3_settings()
    print(f"[sb3 {SB3_EXPERIMENT}] seed {seed}: training ...", flush=True)
    # DummyVecEnv steps its copies in turn, as modelzoo's `vectorization: sync` does.
    env = make_vec_env(settings["env_id"], n_envs=settings["num_envs"], seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings["kwargs"])
    curve = Curve()
    started = time.perf_counter()
    model.learn(settings["total_timesteps"], callback=curve)
    wall = time.perf_counter() - started
    from modelzoo.config import load_recipe

    recipe = load_recipe(ROOT / "configs/rl/ppo_cartpole.yaml", [f"train.seed={seed}"])
    _, reporting = _seed_ranges(recipe)
    # Copy i seeded reporting.start + i, episodes shared out as modelzoo's evaluation does.
    eval_env = make_vec_env(settings["env_id"], n_envs=len(reporting), seed=reporting.start)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=REPORT_EPISODES)
    eval_env.close()
    env.close()
    print(f"[sb3 {SB3_EXPERIMENT}] seed {seed}: {wall:.0f} s, return {mean:.1f}", flush=True)
    return SeedResult(
        seed,
        model.num_timesteps,
        wall,
        float(mean),
        float(std),
        None,
        "last",
        None,
        reporting,
        curve.rows,
    )


def run_interleaved(exp: Experiment, runs_dir: Path, repeats: int) -> tuple[list, list, list]:
    """modelzoo's and SB3's PPO on CartPole, seed by seed, rotating which side goes first.

    Returns (modelzoo results, SB3 results, the order of each repeat).
    """
    ours, theirs, orders = [], [], []
    for k in range(repeats):
        order = ["modelzoo", "sb3"] if k % 2 == 0 else ["sb3", "modelzoo"]
        orders.append(order)
        for side in order:
            if side == "modelzoo":
                ours.append(run_modelzoo(exp, k, runs_dir))
            else:
                theirs.append(run_sb3(k))
    return ours, theirs, orders


# --- report ------------------------------------------------------------------------------


def plot(exp: Experiment, results: list[SeedResult], sb3: list[SeedResult], out: Path) -> Path:
    from modelzoo.train.rl.runner import plot_learning_curves

    runs = {f"modelzoo seed {r.seed}": r.rows for r in results}
    runs.update({f"SB3 seed {r.seed}": r.rows for r in sb3})
    path = out.parent / f"rl_{exp.key}.png"
    plot_learning_curves(runs, path, threshold=exp.threshold)
    return path


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _seeds(r: range | None) -> str:
    return "-" if r is None else f"{r.start}-{r.stop - 1}"


def _results_table(results: dict[str, list[SeedResult]]) -> str:
    rows = []
    for exp in EXPERIMENTS:
        if exp.key not in results:
            continue
        rs = results[exp.key]
        met = sum(r.score >= exp.threshold for r in rs)
        finals = [r.final_score if r.final_score is not None else r.score for r in rs]
        rows.append(
            [
                exp.title,
                f"`configs/rl/{exp.config}`",
                ",".join(str(r.seed) for r in rs),
                f"{statistics.fmean(r.timesteps for r in rs):,.0f}",
                f">= {exp.threshold:g}",
                f"{_fmt([r.score for r in rs])} ({rs[0].checkpoint})",
                _fmt(finals),
                f"**{met}/{len(rs)}**",
                "; ".join(_seeds(r.selection) for r in rs),
                "; ".join(_seeds(r.reporting) for r in rs),
                f"{_fmt([r.wall_s for r in rs])} s",
            ]
        )
    header = [
        "experiment",
        "recipe",
        "seeds",
        "env steps",
        "threshold",
        "score per seed",
        "final policy per seed",
        "met",
        "best.ckpt chosen on env seeds",
        "score measured on env seeds",
        "training time per seed",
    ]
    return table(header, rows)


def sb3_described() -> dict[str, Any]:
    """The SB3 settings the report names, as plain values (stored with the results)."""
    settings = sb3_settings()
    kw = settings["kwargs"]
    shown = ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "ent_coef")
    return {
        "env_id": settings["env_id"],
        "num_envs": settings["num_envs"],
        "total_timesteps": settings["total_timesteps"],
        "shown": {k: kw[k] for k in shown},
        "net_arch": str(kw["policy_kwargs"]["net_arch"]),
    }


def _comparison(comparison: dict[str, Any], note: str) -> list[str]:
    ours = [SeedResult.from_json(v) for v in comparison["modelzoo"]]
    sb3 = [SeedResult.from_json(v) for v in comparison["sb3"]]
    settings = comparison["settings"]
    shown = ", ".join(f"{k} {v}" for k, v in settings["shown"].items())
    med_ours = statistics.median(r.wall_s for r in ours)
    med_sb3 = statistics.median(r.wall_s for r in sb3)
    rows = []
    for side, rs in (("modelzoo", ours), (f"Stable-Baselines3 ({note})", sb3)):
        rows.append(
            [
                side,
                ",".join(str(r.seed) for r in rs),
                ", ".join(f"{r.timesteps:,}" for r in rs),
                spread([r.wall_s for r in rs], ".1f", " s"),
                spread([r.steps_per_s for r in rs], ",.0f"),
                _fmt([r.score for r in rs]),
                f"{sum(r.score >= 475 for r in rs)}/{len(rs)}",
            ]
        )
    order_text = "; ".join(
        f"repeat {k} (seed {k}): {' then '.join(o)}" for k, o in enumerate(comparison["orders"])
    )
    return [
        "## PPO against Stable-Baselines3 (CartPole-v1)",
        "",
        f"Same settings, read from `configs/rl/ppo_cartpole.yaml`: {settings['num_envs']} "
        f"copies of {settings['env_id']} stepped in turn (modelzoo `vectorization: sync`, "
        f"SB3 `DummyVecEnv`), seeded alike, {settings['total_timesteps']:,} environment steps "
        f"requested (both round up to whole rollouts), {shown}, net_arch "
        f"{settings['net_arch']} (tanh), learning rate and clip range decayed "
        f"linearly as in the recipe; one torch thread, one process. The runs are interleaved "
        f"and the order rotates ({order_text}), so drifting machine load hits both sides "
        f"alike. Training time is `fit()` (modelzoo) and `learn()` (SB3) alone. Both sides' "
        f"policies are scored on the same {REPORT_EPISODES} deterministic episodes.",
        "",
        table(
            [
                "side",
                "seeds",
                "env steps per run",
                "training time (min / median / max)",
                "env steps/s (min / median / max)",
                "score per seed",
                ">= 475",
            ],
            rows,
        ),
        "",
        f"Median training time: modelzoo {med_ours:.1f} s, SB3 {med_sb3:.1f} s (modelzoo / SB3 "
        f"= {med_ours / med_sb3:.2f}); "
        + ("modelzoo is faster." if med_ours < med_sb3 else "modelzoo is **not** faster."),
        "",
    ]


def report(data: dict[str, Any]) -> str:
    """The markdown of the stored results ``data`` (see :func:`main`)."""
    machine = data["machine"]
    results = {
        key: [SeedResult.from_json(v) for v in values] for key, values in data["results"].items()
    }
    measured = machine["measured"]
    partial = ""
    if set(measured) != {exp.key for exp in EXPERIMENTS}:
        partial = (
            f" (that run measured {', '.join(measured)} only; the other rows are from "
            "earlier runs of the script)"
        )
    lines = [
        "# Reinforcement-learning results",
        "",
        f"Measured by `python scripts/rl_results.py` on {machine['date']}: "
        f"{machine['cpu']}, {machine['cores']} cores, CPU only, torch {machine['torch']}, "
        f"gymnasium {machine['gymnasium']}, one torch thread (modelzoo and SB3 alike). The "
        f"machine is shared: load average {machine['load'][0]:.2f} at the start, "
        f"{machine['load'][1]:.2f} at the end; the whole script took "
        f"{machine['total_s'] / 60:.1f} min{partial}. Training times include the periodic "
        "evaluations of recipes that have them, and move with the machine's load.",
        "",
        "These are the classic-control recipes. Atari, MuJoCo (locomotion and manipulation), "
        "CarRacing and LunarLander, with SAC and TD3 and the shipped policies playing, are in "
        "[rl_applications.md](rl_applications.md).",
        "",
        f"**Score**: mean return over {REPORT_EPISODES} deterministic evaluation episodes, of "
        "the checkpoint `modelzoo evaluate RUN_DIR` picks: `best.ckpt` for recipes that "
        "evaluate periodically (`train.eval_every`), else the final policy. The best "
        "checkpoint is chosen on episodes of the *selection* seeds (the recipe's "
        "`task.eval_episodes` episodes every `train.eval_every` iterations), the score is "
        "measured on episodes of the *reporting* seeds; both ranges are in the table (copy "
        "i of the evaluation environment is seeded start + i) and never overlap, so the "
        "score of a chosen checkpoint is not biased upwards by the choice. Thresholds are "
        "checked per seed; `tests/test_rl_learning.py` re-trains one seed of each CartPole "
        "recipe in the default suite and all of them under `-m slow`.",
        "",
        _results_table(results),
        "",
    ]
    sb3_note = data.get("sb3_note")
    if data.get("comparison") is not None:
        lines += _comparison(data["comparison"], sb3_note or "")
    elif sb3_note:
        lines += [f"SB3 comparison: {sb3_note}.", ""]
    for exp in EXPERIMENTS:
        rs = results.get(exp.key, [])
        weak = [r for r in rs if r.final_score is not None and r.final_score < exp.threshold]
        if weak:
            lines += [
                f"{exp.title}: the score is that of each run's best checkpoint; the final policy "
                + "; ".join(f"of seed {r.seed} scores {r.final_score:.1f}" for r in weak)
                + f", below {exp.threshold:g} (see its learning curve).",
                "",
            ]
    failed = [
        exp.title
        for exp in EXPERIMENTS
        if exp.key in results and any(r.score < exp.threshold for r in results[exp.key])
    ]
    lines += [
        "Thresholds: "
        + (
            "every run met its threshold."
            if not failed
            else "NOT met by at least one seed of: " + "; ".join(failed) + "."
        ),
        "",
        "Learning curves (mean return of the last 100 training episodes, and the periodic "
        "evaluations as dots):",
        "",
    ]
    for exp in EXPERIMENTS:
        if exp.key in data["plots"]:
            lines.append(f"![{exp.key}]({data['plots'][exp.key]})")
    lines.append("")
    return "\n".join(lines)


def measure(args: argparse.Namespace, chosen: set[str], stored: dict[str, Any]) -> dict[str, Any]:
    """Train and score the ``chosen`` experiments; ``stored`` with them replaced."""
    import gymnasium

    started, load_start = time.perf_counter(), os.getloadavg()[0]
    version = sb3_version()
    note = f"stable-baselines3 {version}" if version else None
    if version is None and args.sb3_repeats:
        note = "Stable-Baselines3 is not installed (pip install stable-baselines3): skipped"
    results: dict[str, list[SeedResult]] = {}
    comparison = None
    for exp in EXPERIMENTS:
        if exp.key not in chosen:
            continue
        if exp.key == SB3_EXPERIMENT and version and args.sb3_repeats:
            comparison = run_interleaved(exp, args.runs_dir, args.sb3_repeats)
            results[exp.key] = comparison[0]
        else:
            results[exp.key] = [run_modelzoo(exp, s, args.runs_dir) for s in exp.seeds]
    data = dict(stored) if stored else {"results": {}, "plots": {}}
    for exp in EXPERIMENTS:
        if exp.key in results:
            extra = comparison[1] if comparison and exp.key == SB3_EXPERIMENT else []
            data["plots"][exp.key] = plot(exp, results[exp.key], extra, args.out).name
            data["results"][exp.key] = [r.to_json() for r in results[exp.key]]
    if SB3_EXPERIMENT in chosen:
        data["sb3_note"] = note
        data["comparison"] = None
        if comparison is not None:
            ours, theirs, orders = comparison
            data["comparison"] = {
                "settings": sb3_described(),
                "modelzoo": [r.to_json() for r in ours],
                "sb3": [r.to_json() for r in theirs],
                "orders": orders,
            }
    data["machine"] = {
        "date": date.today().isoformat(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "load": [load_start, os.getloadavg()[0]],
        "total_s": time.perf_counter() - started,
        "measured": sorted(chosen),
    }
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/rl_results.md")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs/rl_results")
    parser.add_argument("--only", help="comma-separated experiment keys")
    parser.add_argument(
        "--sb3-repeats",
        type=int,
        default=3,
        help="interleaved PPO runs per side against SB3 (0 skips the comparison)",
    )
    parser.add_argument("--report", action="store_true", help="rewrite the markdown only")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 unless the markdown is what the results give"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    from modelzoo.utils.io import atomic_write_text

    stored_path = args.out.with_suffix(".json")
    stored = json.loads(stored_path.read_text()) if stored_path.is_file() else {}
    if args.check or args.report:
        if not stored:
            parser.error(f"no stored results in {stored_path}: measure first")
        text = report(stored)
        if args.check:
            current = args.out.read_text() if args.out.is_file() else ""
            if current != text:
                print(f"{args.out} is not what {stored_path.name} gives: run --report")
                return 1
            print(f"{args.out} is current")
            return 0
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
        return 0
    known = {e.key for e in EXPERIMENTS}
    chosen = set(args.only.split(",")) if args.only else known
    if chosen - known:
        parser.error(f"unknown experiment(s) {sorted(chosen - known)}; choose from {sorted(known)}")
    data = measure(args, chosen, stored)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stored_path, json.dumps(data, indent=1) + "\n")
    text = report(data)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
