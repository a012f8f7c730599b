"""Playing a saved policy: a run directory or a shipped weight set, in the environment it
was trained in, with its returns and, on request, a video.

A policy is more than its network: the environment id and keyword arguments, the
wrappers (Atari preprocessing, frame stacking, pixel resizing) and the
observation statistics of ``data.normalize_obs`` decide what it sees.
:class:`LoadedPolicy` gathers all of them, from a run directory (its
``config.yaml`` and checkpoint) or from a shipped weight set (its card), so a
loaded policy plays exactly as it did in training::

    policy = load_policy("runs/sac_pendulum")          # or load_policy("sac_policy.pendulum")
    result = play(policy, episodes=5, seed=0, video="pendulum.gif")
    result.mean_return, result.returns

Episodes follow :func:`~modelzoo.train.rl.evaluation.evaluate_policy`'s protocol
(up to 8 copies, copy ``i`` seeded ``seed + i`` playing a fixed share of the
episodes), so ``play`` and ``modelzoo evaluate`` report the same returns. Wrapped
environments play full games with the game's own score: no lost-life endings, no
reward clipping.
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelzoo.errors import ConfigError, WeightsError
from modelzoo.train.rl.base import AlgorithmConfig, env_actions
from modelzoo.train.rl.envs import GymDataConfig, RunningMeanStd, make_env, make_vector_env
from modelzoo.train.rl.wrappers import WrapperSpec
from modelzoo.utils.devices import model_device

__all__ = [
    "LoadedPolicy",
    "PlayResult",
    "evaluate_with_wrappers",
    "frame_strip",
    "load_policy",
    "obs_rms_from_spec",
    "play",
    "policy_card_spec",
    "write_video",
]

_logger = logging.getLogger(__name__)

MAX_PLAY_ENVS = 8  # as evaluate_policy


@dataclass
class LoadedPolicy:
    """A policy network and everything that decides what it sees.

    Attributes:
        model: the network, in eval mode.
        env_id: the gymnasium id.
        env_kwargs: keyword arguments for ``gymnasium.make``.
        max_episode_steps: the time limit the run set (None: the environment's).
        wrappers: the run's wrappers.
        obs_rms: observation statistics of a run with ``data.normalize_obs``.
        clip_obs: the clip of normalized observations.
        deterministic: act with the most likely action (the run's ``task.eval_deterministic``).
        source: where it was loaded from.
        episodes: the evaluation episodes its run or card states (``play``'s default).
        seed: their seed.
    """

    model: nn.Module
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    wrappers: WrapperSpec = field(default_factory=WrapperSpec)
    obs_rms: RunningMeanStd | None = None
    clip_obs: float = 10.0
    deterministic: bool = True
    source: str = ""
    episodes: int | None = None
    seed: int | None = None

    @classmethod
    def from_recipe(
        cls,
        model: nn.Module,
        data: GymDataConfig,
        task: AlgorithmConfig,
        *,
        source: str,
        obs_rms: RunningMeanStd | None = None,
        seed: int | None = None,
    ) -> LoadedPolicy:
        """A loaded policy that plays as the recipe's run evaluated.

        Args:
            model: the network, already on its device and in eval mode.
            data: the recipe's data section (environment, wrappers, observation clip).
            task: the recipe's task section (evaluation episodes, seed, determinism).
            source: where it was loaded from.
            obs_rms: observation statistics (runs with ``data.normalize_obs``).
            seed: the evaluation seed (default: the task's ``eval_seed``).
        """
        return cls(
            model=model,
            env_id=data.env_id,
            env_kwargs=dict(data.env_kwargs),
            max_episode_steps=data.max_episode_steps,
            wrappers=data.wrappers(),
            obs_rms=obs_rms,
            clip_obs=data.clip_obs,
            deterministic=task.eval_deterministic,
            source=source,
            episodes=task.eval_episodes or None,
            seed=task.eval_seed if seed is None else seed,
        )

    def make_env(self, render_mode: str | None = None) -> Any:
        """One evaluation copy of the environment, wrapped as in training."""
        return make_env(
            self.env_id,
            self.env_kwargs,
            self.max_episode_steps,
            render_mode,
            wrappers=self.wrappers,
            training=False,
        )

    def actions(self, raw_obs: np.ndarray, action_space: Any) -> np.ndarray:
        """The policy's actions for a batch of raw observations, as ``action_space`` takes them."""
        from modelzoo.train.rl.evaluation import policy_actions

        obs = raw_obs if self.obs_rms is None else self.obs_rms.normalize(raw_obs, self.clip_obs)
        device = model_device(self.model)
        with torch.no_grad():
            actions = policy_actions(
                self.model, torch.as_tensor(obs, device=device), self.deterministic
            )
        return env_actions(actions, action_space)


@dataclass
class PlayResult:
    """The episodes played: their returns, lengths and the video written, if any."""

    # In episode order, round by round over the copies: episode i (i < number of copies) is
    # copy i's first game, seeded seed + i, however many episodes were played.
    returns: list[float]
    lengths: list[int]
    seed: int
    video: Path | None = None
    frames: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "episodes": len(self.returns),
            "returns": list(self.returns),
            "lengths": list(self.lengths),
            "seed": self.seed,
            "video": str(self.video) if self.video else None,
        }


# --- loading ------------------------------------------------------------------------------


def load_policy(
    target: str | Path, checkpoint: str | Path | None = None, device: str = "cpu"
) -> LoadedPolicy:
    """A saved policy from a run directory or a shipped weight set (``arch.tag``).

    Args:
        target: a run directory (``config.yaml`` and ``checkpoints/``), or the name of
            a weight set whose card describes a policy (e.g. ``sac_policy.halfcheetah``).
        checkpoint: a run's checkpoint (default: ``best.ckpt`` when the run kept one,
            else ``last.ckpt``, as ``modelzoo evaluate``).
        device: where the network runs.

    Raises:
        ConfigError: the target is neither a run directory nor a policy's weight set.
        CheckpointError: the checkpoint is missing or does not fit the recipe.
    """
    path = Path(target)
    if path.is_dir():
        return _from_run_dir(path, checkpoint, device)
    if checkpoint is not None:
        raise ConfigError("--checkpoint applies to a run directory, not to a weight set")
    text = str(target)
    if "." in text and not path.exists():
        return _from_weight_set(text, device)
    raise ConfigError(
        f"{target!r} is neither a run directory (with config.yaml and checkpoints/) nor the "
        "name of a shipped policy (arch.tag, e.g. actor_critic.cartpole; see `modelzoo list "
        "--pretrained`)"
    )


def _from_run_dir(run_dir: Path, checkpoint: str | Path | None, device: str) -> LoadedPolicy:
    from modelzoo.config import load_recipe
    from modelzoo.train.rl import is_rl_recipe
    from modelzoo.train.rl.runner import load_trained_model, parse_recipe

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise ConfigError(f"{run_dir} has no config.yaml: it is not a run directory")
    recipe = load_recipe(config)
    if not is_rl_recipe(recipe):
        raise ConfigError(f"{run_dir} is a {recipe.task.get('name')!r} run, not an RL one")
    data, task, _ = parse_recipe(recipe)
    if checkpoint is None:
        best = run_dir / "checkpoints" / "best.ckpt"
        checkpoint = best if best.is_file() else run_dir / "checkpoints" / "last.ckpt"
    model, obs_rms = load_trained_model(recipe, checkpoint, device)
    seed = task.eval_seed if task.eval_seed is not None else recipe.train.seed + 10_000
    return LoadedPolicy.from_recipe(
        model, data, task, source=str(checkpoint), obs_rms=obs_rms, seed=seed
    )


def policy_card_spec(data: Any, obs_rms: RunningMeanStd | None) -> dict[str, Any]:
    """The ``input_spec`` of a shipped policy's card: its environment and its statistics.

    Args:
        data: the run's :class:`~modelzoo.train.rl.envs.GymDataConfig`.
        obs_rms: the run's observation statistics (with ``data.normalize_obs``).
    """
    data_kwargs = {k: v for k, v in data.to_dict().items() if k != "name"}
    spec: dict[str, Any] = {"dataset": "gym", "data_kwargs": data_kwargs}
    if data.normalize_obs:
        if obs_rms is None:
            raise ConfigError("a policy trained with data.normalize_obs needs its statistics")
        # Lists of Python floats: JSON keeps float64 values exactly.
        spec["obs_rms"] = {
            "mean": np.asarray(obs_rms.mean, np.float64).tolist(),
            "var": np.asarray(obs_rms.var, np.float64).tolist(),
            "count": float(obs_rms.count),
            "shape": list(np.shape(obs_rms.mean)),
        }
    return spec


def obs_rms_from_spec(stats: Any, where: str) -> RunningMeanStd:
    """The observation statistics a policy card stores (``policy_card_spec``'s ``obs_rms``).

    Args:
        stats: the card's ``input_spec["obs_rms"]``.
        where: the card's source, for the error message.

    Raises:
        WeightsError: the statistics lack shape, mean, var or count, or their sizes differ.
    """
    try:
        shape = tuple(int(d) for d in stats["shape"])
        obs_rms = RunningMeanStd(shape)
        obs_rms.mean = np.asarray(stats["mean"], np.float64).reshape(shape)
        obs_rms.var = np.asarray(stats["var"], np.float64).reshape(shape)
        obs_rms.count = float(stats["count"])
    except (KeyError, TypeError, ValueError) as err:
        raise WeightsError(
            f"{where}: card.input_spec.obs_rms must hold shape, mean, var and count "
            f"of matching sizes: {err}"
        ) from err
    return obs_rms


def _from_weight_set(name: str, device: str) -> LoadedPolicy:
    import modelzoo
    from modelzoo.config import recipe_from_dict
    from modelzoo.train.rl import is_rl_recipe
    from modelzoo.train.rl.runner import parse_recipe
    from modelzoo.weights import get_weight_set

    arch, _, tag = name.partition(".")
    ws = get_weight_set(arch, tag)
    recipe = recipe_from_dict(dict(ws.recipe or {}))
    if not ws.recipe or not is_rl_recipe(recipe):
        raise ConfigError(f"{name} is not a policy (its card has no RL recipe); play needs one")
    data, task, _ = parse_recipe(recipe)
    spec = dict(ws.input_spec or {})
    obs_rms = None
    if data.normalize_obs:
        stats = spec.get("obs_rms")
        if not stats:
            raise ConfigError(
                f"{name} was trained with data.normalize_obs but its card has no observation "
                "statistics (input_spec.obs_rms); it cannot play as it was trained"
            )
        obs_rms = obs_rms_from_spec(stats, name)
    model = modelzoo.create(name).to(device).eval()
    return LoadedPolicy.from_recipe(model, data, task, source=name, obs_rms=obs_rms)


# --- playing ------------------------------------------------------------------------------


@torch.no_grad()
def play(
    policy: LoadedPolicy,
    episodes: int | None = None,
    seed: int | None = None,
    *,
    video: str | Path | None = None,
    fps: int = 30,
    max_frames: int | None = None,
    keep_frames: bool = False,
) -> PlayResult:
    """Play ``episodes`` episodes; optionally render copy 0's episodes into a video.

    Args:
        policy: from :func:`load_policy`.
        episodes: episodes to play (default: the run's or card's evaluation episodes, else 10).
        seed: seed of copy 0 (default: the run's or card's evaluation seed, else 0).
        video: a ``.gif`` or ``.mp4`` path: copy 0's episodes rendered with
            ``render_mode="rgb_array"`` (mp4 needs ``imageio-ffmpeg``).
        fps: frames per second of the video.
        max_frames: stop recording after this many frames (the episodes still finish).
        keep_frames: also return the rendered frames (``PlayResult.frames``).

    Raises:
        ConfigError: bad counts, an unknown video format, or an environment that
            cannot render frames.
    """
    episodes = episodes if episodes is not None else (policy.episodes or 10)
    seed = seed if seed is not None else (policy.seed if policy.seed is not None else 0)
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1; got {episodes}")
    if video is not None:
        _video_format(Path(video))  # refuse a bad path before playing
    record = video is not None or keep_frames
    returns, lengths, frames = _run_episodes(policy, episodes, seed, record, max_frames)
    written = write_video(frames, Path(video), fps) if video is not None else None
    return PlayResult(returns, lengths, seed, written, frames if keep_frames else [])


def _run_episodes(
    policy: LoadedPolicy, episodes: int, seed: int, record: bool, max_frames: int | None
) -> tuple[list[float], list[int], list[np.ndarray]]:
    num_envs = min(episodes, MAX_PLAY_ENVS)
    if record and "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        # Without a display MuJoCo's default (GLFW) has no context; EGL renders headless.
        os.environ["MUJOCO_GL"] = "egl"
    env = make_vector_env(
        policy.env_id,
        num_envs,
        "sync",
        policy.env_kwargs,
        policy.max_episode_steps,
        render_first=record,
        wrappers=policy.wrappers,
        training=False,
    )
    from modelzoo.models.rl import check_spaces

    try:
        check_spaces(policy.model, env.single_observation_space, env.single_action_space)
        targets = np.array([(episodes + i) // num_envs for i in range(num_envs)])
        counts = np.zeros(num_envs, np.int64)
        # Per copy, in the order it played them; listed at the end round by round, so that
        # episode i is the same game whatever the number of episodes asked for (copy i's
        # first game, seeded seed + i, for i below the number of copies).
        by_copy: list[list[tuple[float, int]]] = [[] for _ in range(num_envs)]
        running = np.zeros(num_envs, np.float64)
        steps = np.zeros(num_envs, np.int64)
        raw, _ = env.reset(seed=seed)
        frames: list[np.ndarray] = []
        if record:
            frames.append(_render(env))
        was_training = policy.model.training
        policy.model.eval()
        try:
            while (counts < targets).any():
                raw, rewards, terminated, truncated, _ = env.step(
                    policy.actions(raw, env.single_action_space)
                )
                running += rewards
                steps += 1
                done = np.logical_or(terminated, truncated)
                recording = record and counts[0] < targets[0]
                for i in np.flatnonzero(done):
                    if counts[i] < targets[i]:
                        by_copy[i].append((float(running[i]), int(steps[i])))
                        counts[i] += 1
                    running[i], steps[i] = 0.0, 0
                # After an episode ends the copy has reset (SAME_STEP autoreset): its frame
                # starts the next episode, wanted only if copy 0 plays another one.
                if recording and (not done[0] or counts[0] < targets[0]):
                    if max_frames is None or len(frames) < max_frames:
                        frames.append(_render(env))
        finally:
            policy.model.train(was_training)
    finally:
        env.close()
    played = [
        by_copy[i][r] for r in range(int(targets.max())) for i in range(num_envs) if r < targets[i]
    ]
    return [ret for ret, _ in played], [n for _, n in played], frames


def _render(env: Any) -> np.ndarray:
    try:
        frame = env.envs[0].render()
    except Exception as err:  # rendering needs optional packages (pygame, a GL context)
        raise ConfigError(f"the environment cannot render rgb_array frames: {err}") from err
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise ConfigError(f"the environment's render() gave {type(frame).__name__}, not an image")
    return np.asarray(frame, np.uint8)


def _video_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ConfigError(f"--video must end in .gif or .mp4; got {path.name!r}")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ConfigError(
                "writing .mp4 needs imageio-ffmpeg (pip install imageio-ffmpeg); or write a .gif"
            ) from None
    return suffix


def write_video(frames: list[np.ndarray], path: Path, fps: int = 30) -> Path:
    """Write frames as a GIF or MP4 with imageio, atomically; returns the path."""
    import imageio.v3 as iio

    from modelzoo.utils.io import atomic_write

    suffix = _video_format(path)
    if not frames:
        raise ConfigError("no frames to write: the episodes rendered nothing")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        data = iio.imwrite(
            "<bytes>", np.stack(frames), extension=".gif", duration=1000 / fps, loop=0
        )
    else:
        data = iio.imwrite("<bytes>", np.stack(frames), extension=".mp4", fps=fps)
    atomic_write(path, data)
    _logger.info("wrote %s (%d frames)", path, len(frames))
    return path


def frame_strip(frames: list[np.ndarray], count: int = 6, height: int = 120) -> np.ndarray:
    """``count`` frames evenly spaced over an episode, side by side, ``height`` pixels high."""
    from PIL import Image

    if not frames:
        raise ConfigError("no frames to make a strip from")
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    tiles = []
    for i in picks:
        image = Image.fromarray(frames[i])
        width = max(1, round(image.width * height / image.height))
        tiles.append(np.asarray(image.resize((width, height), Image.Resampling.BILINEAR)))
    gap = np.full((height, 4, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for tile in tiles:
        parts += [tile[..., :3], gap]
    return np.concatenate(parts[:-1], axis=1)


# --- evaluation of wrapped environments ----------------------------------------------------


def evaluate_with_wrappers(
    model: nn.Module,
    env_id: str,
    episodes: int = 10,
    seed: int = 0,
    *,
    wrappers: WrapperSpec | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """:func:`~modelzoo.train.rl.evaluation.evaluate_policy`, in the run's wrapped environment.

    Takes ``evaluate_policy``'s arguments (``deterministic``, ``env_kwargs``,
    ``max_episode_steps``, ``obs_rms``, ``clip_obs``, ``gif_path``) with its defaults.
    Without wrappers this is ``evaluate_policy`` itself (every argument passed on);
    with them, the same protocol on full games scored by the game's own rewards.

    Raises:
        TypeError: an argument ``evaluate_policy`` does not take.
    """
    from modelzoo.train.rl.evaluation import evaluate_policy

    if wrappers is None or not wrappers.active:
        return evaluate_policy(model, env_id, episodes, seed, **kwargs)
    # evaluate_policy's signature is the one list of the arguments and their defaults.
    bound = inspect.signature(evaluate_policy).bind(model, env_id, episodes, seed, **kwargs)
    bound.apply_defaults()
    args = bound.arguments
    policy = LoadedPolicy(
        model=model,
        env_id=env_id,
        env_kwargs=dict(args["env_kwargs"] or {}),
        max_episode_steps=args["max_episode_steps"],
        wrappers=wrappers,
        obs_rms=args["obs_rms"],
        clip_obs=args["clip_obs"],
        deterministic=args["deterministic"],
    )
    gif_path = args["gif_path"]
    video = None
    if gif_path is not None:
        video = Path(gif_path)
    try:
        result = play(policy, episodes, seed, video=video)
    except ConfigError as err:
        if video is None or "render" not in str(err):
            raise
        _logger.warning("no GIF: %s", err)
        result = play(policy, episodes, seed)
    return {
        "mean_return": result.mean_return,
        "std_return": result.std_return,
        "episodes": len(result.returns),
    }
