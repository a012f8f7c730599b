"""RL results: train the shipped RL recipes, evaluate them, compare PPO with Stable-Baselines3.

    python scripts/rl_results.py [--out benchmarks/rl_results.md] [--runs-dir runs/rl_results]
                                 [--only ppo_cartpole,dqn_cartpole] [--sb3-seeds 3]

For each experiment below, every seed trains its recipe from configs/rl/ (one after
the other, in this process), then ``evaluate_run`` plays 100 deterministic episodes
with seeds that neither training nor the periodic evaluations used. Runs that
evaluate periodically (``train.eval_every``) are scored on their best checkpoint, as
``modelzoo evaluate`` does; the final policy's score is reported beside it.
Stable-Baselines3's PPO runs CartPole-v1 with the same settings in the same process
(skipped with a note when SB3 is not installed: it is not a dependency of modelzoo).
Writes the markdown table and learning-curve PNGs (benchmarks/rl_*.png).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
EVAL_EPISODES = 100
FINAL_EVAL_SEED = 20_000  # + the run's seed: apart from training (seed..) and selection (10000+)


@dataclass
class Experiment:
    key: str
    config: str
    title: str
    threshold: float
    seeds: tuple[int, ...]


EXPERIMENTS = [
    Experiment("ppo_cartpole", "ppo_cartpole.yaml", "PPO, CartPole-v1", 475.0, (0, 1, 2)),
    Experiment("dqn_cartpole", "dqn_cartpole.yaml", "DQN, CartPole-v1", 475.0, (0, 1, 2)),
    Experiment("ppo_pendulum", "ppo_pendulum.yaml", "PPO, Pendulum-v1", -300.0, (0,)),
    Experiment("ppo_acrobot", "ppo_acrobot.yaml", "PPO, Acrobot-v1", -100.0, (0,)),
]


@dataclass
class SeedResult:
    seed: int
    timesteps: int
    wall_s: float
    score: float  # mean return over EVAL_EPISODES, of the checkpoint `modelzoo evaluate` picks
    score_std: float
    final_score: float | None  # the final policy, when a best checkpoint was scored instead
    checkpoint: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        return self.timesteps / self.wall_s


def run_experiment(exp: Experiment, runs_dir: Path) -> list[SeedResult]:
    from modelzoo.config import load_recipe
    from modelzoo.train.recipes import evaluate_run, train_recipe

    results = []
    for seed in exp.seeds:
        run = runs_dir / f"{exp.key}-seed{seed}"
        if run.exists():
            import shutil

            shutil.rmtree(run)
        recipe = load_recipe(
            ROOT / "configs/rl" / exp.config,
            [f"train.seed={seed}", "train.progress=false"],
        )
        print(f"[{exp.key}] seed {seed}: training ...", flush=True)
        result = train_recipe(recipe, run)
        runner = result.trainer
        overrides = [
            f"task.eval_episodes={EVAL_EPISODES}",
            f"task.eval_seed={FINAL_EVAL_SEED + seed}",
        ]
        best = run / "checkpoints/best.ckpt"
        chosen = evaluate_run(run, overrides=overrides)
        final = None
        if best.is_file():
            final = evaluate_run(run, run / "checkpoints/last.ckpt", overrides)["mean_return"]
        with (run / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        results.append(
            SeedResult(
                seed,
                runner.timesteps,
                runner.wall_time,
                chosen["mean_return"],
                chosen["std_return"],
                final,
                "best" if best.is_file() else "last",
                rows,
            )
        )
        print(
            f"[{exp.key}] seed {seed}: {runner.timesteps} steps in {runner.wall_time:.0f} s, "
            f"return {chosen['mean_return']:.1f} +- {chosen['std_return']:.1f}"
            + (f" (final policy {final:.1f})" if final is not None else ""),
            flush=True,
        )
    return results


# --- Stable-Baselines3 ---------------------------------------------------------------------


def sb3_settings() -> dict[str, Any]:
    """SB3 PPO arguments equal to configs/rl/ppo_cartpole.yaml (read from it)."""
    from modelzoo.config import load_recipe

    recipe = load_recipe(ROOT / "configs/rl/ppo_cartpole.yaml")
    task, lr = recipe.task, recipe.train.lr
    net_arch = recipe.model.get("net_arch", {"pi": [64, 64], "vf": [64, 64]})
    clip = task["clip_range"]
    return {
        "total_timesteps": task["total_timesteps"],
        "num_envs": recipe.data["num_envs"],
        "kwargs": dict(
            n_steps=task["n_steps"],
            batch_size=task["minibatch_size"],
            n_epochs=task["n_epochs"],
            gamma=task["gamma"],
            gae_lambda=task["gae_lambda"],
            ent_coef=task["ent_coef"],
            vf_coef=task["vf_coef"],
            max_grad_norm=task["max_grad_norm"],
            learning_rate=(lambda p: lr * p) if task.get("anneal_lr") else lr,
            clip_range=(lambda p: clip * p) if task.get("anneal_clip_range") else clip,
            policy_kwargs=dict(net_arch=dict(net_arch)),
        ),
    }


def run_sb3(seeds: list[int]) -> tuple[list[SeedResult], str | None]:
    try:
        import stable_baselines3
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
    except ImportError:
        return [], "Stable-Baselines3 is not installed (pip install stable-baselines3): skipped"

    class Curve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, Any]] = []

        def _on_rollout_end(self) -> None:
            infos = self.model.ep_info_buffer
            if infos:
                self.rows.append(
                    {
                        "timesteps": self.num_timesteps,
                        "mean_return": statistics.fmean(i["r"] for i in infos),
                    }
                )

        def _on_step(self) -> bool:
            return True

    settings = sb3_settings()
    results = []
    for seed in seeds:
        print(f"[sb3 ppo_cartpole] seed {seed}: training ...", flush=True)
        env = make_vec_env("CartPole-v1", n_envs=settings["num_envs"], seed=seed)
        model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings["kwargs"])
        curve = Curve()
        started = time.perf_counter()
        model.learn(settings["total_timesteps"], callback=curve)
        wall = time.perf_counter() - started
        eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=FINAL_EVAL_SEED + seed)
        mean, std = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES)
        results.append(
            SeedResult(
                seed, model.num_timesteps, wall, float(mean), float(std), None, "last", curve.rows
            )
        )
        print(f"[sb3 ppo_cartpole] seed {seed}: {wall:.0f} s, return {mean:.1f}", flush=True)
    return results, f"stable-baselines3 {stable_baselines3.__version__}"


# --- report ------------------------------------------------------------------------------


def plot(exp: Experiment, results: list[SeedResult], sb3: list[SeedResult], out: Path) -> Path:
    from modelzoo.train.rl.runner import plot_learning_curves

    runs = {f"modelzoo seed {r.seed}": r.rows for r in results}
    runs.update({f"SB3 seed {r.seed}": r.rows for r in sb3})
    path = out.parent / f"rl_{exp.key}.png"
    plot_learning_curves(runs, path, threshold=exp.threshold)
    return path


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def report(
    results: dict[str, list[SeedResult]],
    sb3: list[SeedResult],
    sb3_note: str | None,
    plots: dict[str, Path],
    load: tuple[float, float],
    total_s: float,
) -> str:
    import gymnasium

    lines = [
        "# Reinforcement-learning results",
        "",
        f"Measured by `python scripts/rl_results.py` on {date.today().isoformat()}: "
        f"{platform.machine()} ({_cpu()}), {os.cpu_count()} cores, CPU only, torch "
        f"{torch.__version__}, gymnasium {gymnasium.__version__}, one torch thread per run "
        f"(modelzoo and SB3 alike). The machine is shared: load average {load[0]:.2f} at the "
        f"start, {load[1]:.2f} at the end; the whole script took {total_s / 60:.1f} min. "
        "Wall-clock and steps/s include the updates and the periodic evaluations, so they "
        "move with the machine's load.",
        "",
        f"**Score**: mean return over {EVAL_EPISODES} deterministic evaluation episodes (seeds "
        f"{FINAL_EVAL_SEED} + run seed onward, used by nothing else), of the checkpoint "
        "`modelzoo evaluate RUN_DIR` picks: `best.ckpt` for recipes that evaluate periodically "
        "(`train.eval_every`, 10-20 episodes on other seeds), else the final policy. "
        "Thresholds are checked per seed.",
        "",
        "| experiment | recipe | seeds | env steps | threshold | score per seed | "
        "final policy per seed | met | wall-clock per seed | env steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for exp in EXPERIMENTS:
        if exp.key not in results:
            continue
        rs = results[exp.key]
        met = sum(r.score >= exp.threshold for r in rs)
        finals = [r.final_score if r.final_score is not None else r.score for r in rs]
        lines.append(
            f"| {exp.title} | `configs/rl/{exp.config}` | {len(rs)} | "
            f"{statistics.fmean(r.timesteps for r in rs):,.0f} | >= {exp.threshold:g} | "
            f"{_fmt([r.score for r in rs])} ({rs[0].checkpoint}) | {_fmt(finals)} | "
            f"**{met}/{len(rs)}** | {_fmt([r.wall_s for r in rs])} s | "
            f"{statistics.fmean(r.steps_per_s for r in rs):,.0f} |"
        )
    if sb3:
        lines.append(
            f"| PPO, CartPole-v1, **Stable-Baselines3** ({sb3_note}) | same settings | {len(sb3)} "
            f"| {statistics.fmean(r.timesteps for r in sb3):,.0f} | >= 475 | "
            f"{_fmt([r.score for r in sb3])} (last) | {_fmt([r.score for r in sb3])} | "
            f"**{sum(r.score >= 475 for r in sb3)}/{len(sb3)}** | "
            f"{_fmt([r.wall_s for r in sb3])} s | "
            f"{statistics.fmean(r.steps_per_s for r in sb3):,.0f} |"
        )
    lines.append("")
    if sb3_note and not sb3:
        lines += [f"SB3 comparison: {sb3_note}.", ""]
    if sb3 and "ppo_cartpole" in results:
        ours = statistics.fmean(r.wall_s for r in results["ppo_cartpole"])
        theirs = statistics.fmean(r.wall_s for r in sb3)
        settings = sb3_settings()
        kw = settings["kwargs"]
        shown = ", ".join(
            f"{k} {kw[k]}"
            for k in ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "ent_coef")
        )
        lines += [
            f"PPO on CartPole-v1, side by side: modelzoo {ours:.0f} s against SB3 {theirs:.0f} s "
            f"per run on average (ratio {ours / theirs:.2f}). Same settings, read from "
            f"`configs/rl/ppo_cartpole.yaml`: {settings['num_envs']} copies, {shown}, "
            f"net_arch {kw['policy_kwargs']['net_arch']} (tanh); learning rate and clip range "
            "decayed linearly as in the recipe. Same protocol: 100 deterministic episodes on "
            "evaluation seeds of their own, through modelzoo's and SB3's `evaluate_policy`.",
            "",
        ]
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
    for key, path in plots.items():
        lines.append(f"![{key}]({path.name})")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/rl_results.md")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs/rl_results")
    parser.add_argument("--only", help="comma-separated experiment keys")
    parser.add_argument("--sb3-seeds", type=int, default=3, help="0 skips the SB3 comparison")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    chosen = set(args.only.split(",")) if args.only else {e.key for e in EXPERIMENTS}
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    results = {e.key: run_experiment(e, args.runs_dir) for e in EXPERIMENTS if e.key in chosen}
    sb3, note = run_sb3(list(range(args.sb3_seeds))) if args.sb3_seeds else ([], None)
    plots = {}
    for exp in EXPERIMENTS:
        if exp.key in results:
            extra = sb3 if exp.key == "ppo_cartpole" else []
            plots[exp.key] = plot(exp, results[exp.key], extra, args.out)
    text = report(
        results, sb3, note, plots, (load_start, os.getloadavg()[0]), time.perf_counter() - started
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
