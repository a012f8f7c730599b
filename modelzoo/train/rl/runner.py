"""The RL training loop: environments, model and algorithm, with logs, checkpoints and evaluation.

``RLRunner`` reuses the supervised trainer's pieces (seeding, device, precision,
optimizer, atomic checkpoints with RNG states, metrics.csv, TensorBoard, plots)
and replaces only the data loop with rollouts. See :mod:`modelzoo.train.rl`
for the units of a run (``task.total_timesteps`` and iterations).

A checkpoint is written at an iteration boundary and holds the model, the
optimizer, the algorithm's state (DQN's replay buffer and target network), the
RNG states, and the environments' state as their seed plus every action sent so
far (:class:`~modelzoo.train.rl.envs.EnvDriver` replays them on resume), so a
resumed CPU run reproduces the uninterrupted one bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.config import Recipe, TrainConfig
from modelzoo.errors import CheckpointError, ConfigError, NonFiniteLossError
from modelzoo.train.checkpoint import (
    CHECKPOINT_VERSION,
    atomic_save,
    load_checkpoint,
    rng_state,
    set_rng_state,
)
from modelzoo.train.distributed import DistributedContext
from modelzoo.train.loggers import save_figure
from modelzoo.train.optim import load_optimizer_state, optimizer_param_names, v1_group_names
from modelzoo.train.precision import Precision
from modelzoo.train.rl import ALGORITHMS
from modelzoo.train.rl.a2c import A2C
from modelzoo.train.rl.base import Algorithm, AlgorithmConfig
from modelzoo.train.rl.dqn import DQN
from modelzoo.train.rl.envs import (
    EnvDriver,
    GymDataConfig,
    RunningMeanStd,
    check_env_id,
    make_env,
    make_vector_env,
)
from modelzoo.train.rl.evaluation import episode_seeds
from modelzoo.train.rl.play import evaluate_with_wrappers
from modelzoo.train.rl.ppo import PPO
from modelzoo.train.rl.sac import SAC
from modelzoo.train.rl.td3 import TD3
from modelzoo.train.run import RunDir, progress_bar
from modelzoo.train.trainer import resolve_device, seed_everything

__all__ = [
    "RLResult",
    "RLRunner",
    "build_model",
    "evaluation_seeds",
    "evaluate_rl",
    "load_trained_model",
    "parse_recipe",
    "resume_rl",
    "train_rl",
    "validate_rl_recipe",
]

_logger = logging.getLogger(__name__)

# Below this many parameters a CPU run uses one intra-op thread: for networks this small,
# splitting each matmul across threads costs more in synchronization than it saves (and on
# a busy machine spinning threads made a CartPole run 17x slower).
SINGLE_THREAD_PARAMS = 1_000_000
# Evaluation episodes come from disjoint seed ranges (copy i of an evaluation's environment is
# seeded first_seed + i and plays all its episodes from that seed): training copies use
# train.seed + i; the periodic evaluations that choose best.ckpt use
# train.seed + SELECTION_SEED_OFFSET + i; the returns a run reports (test_metrics.json,
# `modelzoo evaluate`) use train.seed + REPORT_SEED_OFFSET + i, or task.eval_seed + i. A
# return measured on the episodes that chose the checkpoint would be biased upward.
SELECTION_SEED_OFFSET = 10_000
REPORT_SEED_OFFSET = 20_000

ALGORITHM_CLASSES: dict[str, type[Algorithm]] = {
    "ppo": PPO,
    "a2c": A2C,
    "dqn": DQN,
    "sac": SAC,
    "td3": TD3,
}
assert tuple(ALGORITHM_CLASSES) == ALGORITHMS

# TrainConfig fields that mean nothing for an RL run; setting one is an error, not a no-op.
_UNSUPPORTED_TRAIN = {
    "epochs": "the run's length is task.total_timesteps",
    "grad_accum": "each algorithm fixes its own batches",
    "clip_grad_norm": "use task.max_grad_norm",
    "scheduler": "use task.anneal_lr",
    "warmup_steps": "use task.anneal_lr",
    "ema_decay": "not supported for RL",
    "ema_warmup": "RL runs keep no EMA",
    "layer_decay": "not supported for RL",
    "early_stopping_patience": "not supported for RL",
    "monitor": "best.ckpt follows val_mean_return",
    "max_bad_steps": "a non-finite rollout or loss always stops an RL run",
    "channels_last": "not supported for RL",
    "compile": "not supported for RL",
    "fsdp": "not supported for RL",
    "num_workers": "use data.vectorization: async for parallel environments",
}


@dataclass
class RLResult:
    """What :func:`train_rl` returns (the fields ``modelzoo train`` prints)."""

    run_dir: Path | None
    trainer: RLRunner
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]


def parse_recipe(recipe: Recipe) -> tuple[GymDataConfig, AlgorithmConfig, type[Algorithm]]:
    """The data settings, the algorithm's settings and its class; every key checked."""
    task = dict(recipe.task)
    name = task.get("name")
    if name not in ALGORITHM_CLASSES:
        raise ConfigError(f"task.name must be one of {', '.join(ALGORITHMS)}; got {name!r}")
    cls = ALGORITHM_CLASSES[name]
    return GymDataConfig.from_dict(recipe.data), cls.config_class.from_dict(task), cls


def _check_train_config(config: TrainConfig) -> None:
    defaults = TrainConfig()
    for key, why in _UNSUPPORTED_TRAIN.items():
        if getattr(config, key) != getattr(defaults, key):
            raise ConfigError(f"train.{key} does not apply to RL runs ({why}); remove it")


def _check_model_section(recipe: Recipe, cls: type[Algorithm]) -> tuple[str, dict[str, Any]]:
    from modelzoo.registry import check_kwargs

    kwargs = dict(recipe.model)
    name = kwargs.pop("name")
    if name not in cls.model_kinds:
        raise ConfigError(
            f"task.name={recipe.task['name']} trains {' or '.join(cls.model_kinds)}; got "
            f"model.name={name!r}"
        )
    check_kwargs(name, kwargs)
    return name, kwargs


def validate_rl_recipe(recipe: Recipe) -> None:
    """Check every key of an RL recipe (model, data, task, train) without building anything."""
    data, _, cls = parse_recipe(recipe)
    _check_train_config(recipe.train)
    _check_model_section(recipe, cls)
    check_env_id(data.env_id)


def build_model(
    recipe: Recipe, observation_space: Any, action_space: Any, cls: type[Algorithm]
) -> nn.Module:
    """The recipe's network, sized from the environment's spaces (``from_spaces``).

    Sizes given in the recipe (``obs_dim``, ``action_dim``, ``continuous``) win,
    and a network that then does not fit the environment raises ConfigError
    naming both.
    """
    from modelzoo.models.rl import from_spaces

    name, kwargs = _check_model_section(recipe, cls)
    return from_spaces(observation_space, action_space, kind=name, **kwargs)


def load_trained_model(
    recipe: Recipe, checkpoint: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, RunningMeanStd | None]:
    """The recipe's network with a checkpoint's weights, in eval mode on ``device``, and the
    checkpoint's observation statistics (None unless the recipe normalizes observations).

    Raises:
        CheckpointError: the checkpoint's weights do not fit the recipe's network.
    """
    data, _, cls = parse_recipe(recipe)
    state = load_checkpoint(checkpoint, map_location=device)
    env = make_env(
        data.env_id,
        data.env_kwargs,
        data.max_episode_steps,
        wrappers=data.wrappers(),
        training=False,
    )
    try:
        model = build_model(recipe, env.observation_space, env.action_space, cls)
    finally:
        env.close()
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(f"{checkpoint} does not match the recipe's model: {err}") from err
    obs_rms = None
    if data.normalize_obs and "env" in state:
        obs_rms = RunningMeanStd()
        obs_rms.load_state_dict(state["env"]["obs_rms"])
    return model.to(device).eval(), obs_rms


class RLRunner:
    """Train an RL recipe: rollouts and updates, logs, checkpoints, evaluation.

    Args:
        recipe: a validated recipe whose task is ``ppo``, ``a2c`` or ``dqn``.
        run_dir: where metrics.csv, checkpoints/ and plots/ go; None writes nothing.
    """

    def __init__(self, recipe: Recipe, run_dir: str | Path | None = None) -> None:
        self.recipe = recipe
        self.config = cfg = recipe.train
        self.data, self.task_config, algorithm_cls = parse_recipe(recipe)
        _check_train_config(cfg)
        if cfg.dry_run:
            self.task_config.shrink_for_dry_run(self.data)
            cfg.max_steps = min(cfg.max_steps or 2, 2)
            cfg.progress = False
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError(
                "RL runs are one process (parallelism comes from data.num_envs and "
                "data.vectorization: async); run without torchrun"
            )
        self.dist = DistributedContext()  # one process: rank 0 writes and reports
        self.device = resolve_device(cfg.device)
        self.precision = Precision(cfg.precision, self.device)
        seed_everything(cfg.seed)  # model initialization is part of the run
        vec_env = make_vector_env(
            self.data.env_id,
            self.data.num_envs,
            self.data.vectorization,
            self.data.env_kwargs,
            self.data.max_episode_steps,
            wrappers=self.data.wrappers(),
        )
        try:
            self.driver = EnvDriver(vec_env, self.data, self.task_config.gamma, cfg.seed)
            # Orthogonal init (a QR factorization) differs in the last bits between thread
            # counts: one thread makes a run's start independent of the caller's setting.
            with _single_thread():
                model = build_model(
                    recipe,
                    vec_env.single_observation_space,
                    vec_env.single_action_space,
                    algorithm_cls,
                )
        except BaseException:
            vec_env.close()
            raise
        model = self.precision.convert_module(model.to(self.device))
        self.algorithm = algorithm_cls(
            model, self.driver, self.task_config, cfg, self.device, self.precision
        )
        self.step = 0  # iterations done
        self.best_metric: float | None = None
        self.last_metrics: dict[str, float] = {}  # the last periodic evaluation
        self.test_metrics: dict[str, float] = {}  # the end-of-run evaluation
        self.wall_time = 0.0  # seconds spent in fit() (this process)
        self.run = (
            RunDir(self.run_dir, keep_last=cfg.keep_last) if self.run_dir is not None else None
        )
        self.seeds = evaluation_seeds(self.task_config, cfg, self.data.num_envs)

    @property
    def model(self) -> nn.Module:
        return self.algorithm.model

    @property
    def timesteps(self) -> int:
        return self.driver.timesteps

    @property
    def total_iterations(self) -> int:
        return self.algorithm.iterations

    # --- the loop --------------------------------------------------------------------

    def fit(self, *, resume_from: str | Path | None = None) -> dict[str, float]:
        """Train until ``task.total_timesteps`` (or ``train.max_steps`` iterations).

        Returns:
            The last periodic evaluation (empty without ``train.eval_every``).
        """
        with self._threads():
            return self._fit(resume_from)

    def _threads(self) -> contextlib.AbstractContextManager:
        return _threads_for(self.model, self.device)

    def _fit(self, resume_from: str | Path | None) -> dict[str, float]:
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        else:
            self.driver.reset()
        if self.run is not None:
            self.run.open(
                self.recipe.to_dict(), step=self.step, tensorboard=self.config.tensorboard
            )
        total = self.total_iterations
        stop = self._done(total)
        progress = self._progress()
        started, start_steps = time.perf_counter(), self.timesteps
        try:
            while not stop:
                before = self.timesteps
                metrics = self.algorithm.iterate(self.step + 1)
                self.step += 1
                stop = self._done(total)
                self._after_step(metrics, stop, total)
                if progress is not None:
                    stats = self.driver.episode_stats()
                    progress.update(
                        self.timesteps - before,
                        **{
                            "return": stats.get("mean_return", float("nan")),
                            "length": stats.get("mean_length", float("nan")),
                        },
                    )
        finally:
            if progress is not None:
                progress.close()
        self.wall_time = time.perf_counter() - started
        done = self.timesteps - start_steps
        _logger.info(
            "%s on %s: %d env steps in %.1f s (%.0f steps/s)",
            self.task_config.name,
            self.data.env_id,
            done,
            self.wall_time,
            done / max(self.wall_time, 1e-9),
        )
        self._finish()
        return self.last_metrics

    def _done(self, total: int) -> bool:
        max_steps = self.config.max_steps
        return self.step >= total or (max_steps is not None and self.step >= max_steps)

    def _after_step(self, metrics: dict[str, float], stop: bool, total: int) -> None:
        cfg = self.config
        row: dict[str, Any] = {}
        if self.step % cfg.log_every == 0 or stop:
            row = {
                "step": self.step,
                "timesteps": self.timesteps,
                "episodes": self.driver.episodes,
                **self.driver.episode_stats(),
                **metrics,
            }
        improved = False
        if cfg.eval_every and self.step % cfg.eval_every == 0 and self.task_config.eval_episodes:
            # Selection seeds: these episodes choose best.ckpt, and measure no reported return.
            evaluation = self.evaluate(seed=self.seeds["selection"][0])
            self.last_metrics = evaluation
            row = row or {"step": self.step, "timesteps": self.timesteps}
            row.update({f"val_{k}": float(evaluation[k]) for k in ("mean_return", "std_return")})
            if self.best_metric is None or evaluation["mean_return"] > self.best_metric:
                self.best_metric = evaluation["mean_return"]
                improved = True
        if self.run is None:
            return
        self.run.end_step(
            row,
            self._finite_checkpoint_state,
            step=self.step,
            checkpoint_every=cfg.checkpoint_every,
            best=improved,
            last=stop,
        )

    # --- evaluation ------------------------------------------------------------------

    def evaluate(
        self,
        episodes: int | None = None,
        seed: int | None = None,
        gif_path: str | Path | None = None,
    ) -> dict[str, float]:
        """Mean and std of the return over evaluation episodes (``task.eval_*`` by default).

        By default the episodes are the reported ones, on seeds apart from the periodic
        evaluations that choose best.ckpt (see :func:`evaluation_seeds`).
        """
        task = self.task_config
        with self._threads():
            return evaluate_with_wrappers(
                self.model,
                self.data.env_id,
                episodes or task.eval_episodes or 10,
                self.seeds["reported"][0] if seed is None else seed,
                deterministic=task.eval_deterministic,
                env_kwargs=self.data.env_kwargs,
                max_episode_steps=self.data.max_episode_steps,
                obs_rms=self.driver.obs_rms if self.data.normalize_obs else None,
                clip_obs=self.data.clip_obs,
                gif_path=gif_path,
                wrappers=self.data.wrappers(),
            )

    # --- checkpoints -----------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything an exact resume needs, as ``weights_only``-loadable values."""
        return {
            "version": CHECKPOINT_VERSION,
            "algorithm": self.task_config.name,
            "model": self.model.state_dict(),
            "model_weights": "training",  # RL runs keep no EMA: the evaluated weights
            "model_name": getattr(self.model, "model_name", None),
            "optimizers": {"main": self.algorithm.optimizer.state_dict()},
            "optimizer_params": {
                "main": optimizer_param_names(self.algorithm.optimizer, self.model)
            },
            "precision": self.precision.state_dict(),
            "algorithm_state": self.algorithm.state_dict(),
            "env": self.driver.state_dict(),
            "rng": rng_state(),
            "loop": {"step": self.step, "best_metric": self.best_metric},
            "config": self.recipe.to_dict(),
        }

    def _finite_checkpoint_state(self) -> dict[str, Any]:
        bad = [n for n, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise NonFiniteLossError(
                f"step {self.step}: parameters {bad[:3]} are not finite; refusing to write a "
                "checkpoint. Lower train.lr or set task.max_grad_norm."
            )
        return self.checkpoint_state()

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write a checkpoint atomically; refuses non-finite parameters."""
        return atomic_save(self._finite_checkpoint_state(), path)

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore model, optimizer, algorithm, environments, RNG states and loop position."""
        state = load_checkpoint(path, map_location=self.device)
        if state.get("algorithm") != self.task_config.name or "env" not in state:
            raise CheckpointError(
                f"{path} is not a {self.task_config.name} checkpoint of an RL run "
                f"(it holds {state.get('algorithm', 'a supervised run')!r})"
            )
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise CheckpointError(f"{path} does not match this model: {err}") from err
        optimizer = self.algorithm.optimizer
        saved = (state.get("optimizer_params") or {}).get("main")
        if saved is None:  # version 1 recorded no names: its layout was v1_group_names'
            saved = v1_group_names(self.model.named_parameters())
        load_optimizer_state(
            optimizer,
            state["optimizers"]["main"],
            optimizer_param_names(optimizer, self.model),
            saved,
            str(path),
        )
        self.precision.load_state_dict(state["precision"])
        self.algorithm.load_state_dict(state["algorithm_state"])
        self.driver.load_state_dict(state["env"])
        set_rng_state(state["rng"])  # last: replaying the environments draws nothing from it
        self.step = int(state["loop"]["step"])
        self.best_metric = state["loop"]["best_metric"]

    # --- logs ------------------------------------------------------------------------

    def _progress(self) -> Any:
        if not self.config.progress:
            return None
        per_iteration = self.task_config.steps_per_iteration(self.driver.num_envs)
        last = self.total_iterations
        if self.config.max_steps is not None:
            last = min(last, self.config.max_steps)
        total = last * per_iteration
        return progress_bar(
            total,
            initial=min(self.timesteps, total),
            unit="step",
            unit_scale=True,
            desc=f"{self.task_config.name} {self.data.env_id}",
        )

    def _finish(self) -> None:
        if self.run is None:
            return
        self.run.close()
        if not self.config.plots:
            return
        skip = ("timesteps", "episodes", "mean_return", "mean_length", "lr", "exploration_rate")
        self.run.plot_metrics(skip=skip)
        title = f"{self.task_config.name.upper()} on {self.data.env_id}"
        plot_learning_curves({title: self.run.rows}, self.run.path / "plots/learning_curve.png")

    def close(self) -> None:
        self.driver.close()


def plot_learning_curves(
    runs: dict[str, list[dict[str, Any]]], path: Path, threshold: float | None = None
) -> Path:
    """Mean episode return against environment steps, one line per run (metrics.csv rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, rows in runs.items():
        points = _series(rows, "mean_return")
        if points:
            line = ax.plot(*zip(*points), label=f"{label} (train, last 100 episodes)")[0]
            evals = _series(rows, "val_mean_return")
            if evals:
                ax.plot(*zip(*evals), "o", ms=3, color=line.get_color(), label=f"{label} (eval)")
    if threshold is not None:
        ax.axhline(threshold, color="gray", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    else:  # a run too short for any episode to end
        ax.text(0.5, 0.5, "no episode has ended yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return save_figure(fig, path)


def _series(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    points = []
    for row in rows:
        value, x = row.get(key), row.get("timesteps")
        if value in (None, "") or x in (None, ""):
            continue
        value = float(value)
        if math.isfinite(value):
            points.append((float(x), value))
    return points


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _threads_for(model: nn.Module, device: torch.device) -> contextlib.AbstractContextManager:
    """One intra-op thread on CPU for small networks (see SINGLE_THREAD_PARAMS)."""
    small = sum(p.numel() for p in model.parameters()) < SINGLE_THREAD_PARAMS
    if device.type == "cpu" and small:
        return _single_thread()
    return contextlib.nullcontext()


def evaluation_seeds(
    task: AlgorithmConfig, train: TrainConfig, num_envs: int = 1
) -> dict[str, list[int]]:
    """The first and last environment seed of each kind of episodes of a run.

    ``training``: the training environments. ``selection``: the periodic evaluations
    (``train.eval_every``) whose mean return chooses best.ckpt. ``reported``: the
    end-of-run evaluation in test_metrics.json and ``modelzoo evaluate``
    (``task.eval_seed`` moves them). The three ranges never overlap, so a reported return
    never comes from the episodes that chose the checkpoint.

    Args:
        task: the algorithm's settings (``eval_episodes``, ``eval_seed``).
        train: the run's settings (``seed``).
        num_envs: training environment copies (``data.num_envs``).

    Raises:
        ConfigError: ``task.eval_seed`` puts the reported episodes on seeds of the others.
    """
    copies = len(episode_seeds(0, task.eval_episodes or 10))
    selection = train.seed + SELECTION_SEED_OFFSET
    reported = task.eval_seed if task.eval_seed is not None else train.seed + REPORT_SEED_OFFSET
    seeds = {
        "training": [train.seed, train.seed + num_envs - 1],
        "selection": [selection, selection + copies - 1],
        "reported": [reported, reported + copies - 1],
    }
    for other in ("training", "selection"):
        low, high = seeds[other]
        if reported <= high and low <= seeds["reported"][1]:
            raise ConfigError(
                f"task.eval_seed={reported} puts the reported evaluation episodes (seeds "
                f"{reported}..{seeds['reported'][1]}) on the {other} seeds {low}..{high}, and a "
                "return measured on them is biased. Leave task.eval_seed unset (train.seed + "
                f"{REPORT_SEED_OFFSET}) or pick a seed outside {low}..{high}"
            )
    return seeds


# --- what the recipe functions call ------------------------------------------------------


def _run(runner: RLRunner, resume_from: Path | None) -> RLResult:
    try:
        runner.fit(resume_from=resume_from)
        test: dict[str, float] = {}
        if runner.task_config.eval_episodes:
            test = runner.evaluate()
            if runner.run is not None:
                # Which seeds chose best.ckpt and which measured this, next to the numbers.
                runner.run.write_json("test_metrics.json", {**test, "seeds": runner.seeds})
        runner.test_metrics = test
    finally:
        runner.close()
    return RLResult(runner.run_dir, runner, runner.last_metrics, runner.test_metrics)


def train_rl(recipe: Recipe, run_dir: str | Path | None = None) -> RLResult:
    """Train an RL recipe from scratch, then evaluate ``task.eval_episodes`` episodes."""
    return _run(RLRunner(recipe, run_dir), None)


def resume_rl(recipe: Recipe, run_dir: str | Path, checkpoint: str | Path) -> RLResult:
    """Continue an RL run exactly from ``checkpoint`` (e.g. with a larger train.max_steps)."""
    return _run(RLRunner(recipe, run_dir), Path(checkpoint))


def evaluate_rl(recipe: Recipe, checkpoint: str | Path) -> dict[str, float]:
    """Evaluate a checkpoint: ``{"mean_return", "std_return", "episodes"}``.

    ``task.eval_episodes``, ``task.eval_seed`` and ``task.eval_deterministic`` (as
    overrides) choose the episodes; by default they are the run's reported episodes, on
    seeds apart from those that chose best.ckpt (see :func:`evaluation_seeds`).
    ``task.eval_gif=true`` also writes ``eval.gif`` into the run directory.
    """
    data, task, _ = parse_recipe(recipe)
    _check_train_config(recipe.train)
    device = resolve_device(recipe.train.device)
    model, obs_rms = load_trained_model(recipe, checkpoint, device)
    checkpoint = Path(checkpoint)
    out_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
    gif = (out_dir or checkpoint.parent) / "eval.gif" if task.eval_gif else None
    with _threads_for(model, device):
        return evaluate_with_wrappers(
            model,
            data.env_id,
            task.eval_episodes or 10,
            evaluation_seeds(task, recipe.train, data.num_envs)["reported"][0],
            deterministic=task.eval_deterministic,
            env_kwargs=data.env_kwargs,
            max_episode_steps=data.max_episode_steps,
            obs_rms=obs_rms,
            clip_obs=data.clip_obs,
            gif_path=gif,
            wrappers=data.wrappers(),
        )
