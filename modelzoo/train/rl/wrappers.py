"""The environment wrappers of a run: Atari preprocessing, pixel observations, frame stacking.

A run's wrappers are part of its recipe (the ``data`` section, see
:class:`WrapperSpec`), so every consumer of a saved run or a shipped policy
(training, resuming, ``modelzoo evaluate``, ``modelzoo play``, the ``--check``
of shipped policies) builds the environment the policy was trained on.

Atari follows the standard pipeline (Machado et al., "Revisiting the Arcade
Learning Environment", JAIR 2018; the settings of CleanRL and SB3) through
gymnasium's own wrappers:

- ``AtariPreprocessing``: up to 30 no-op actions on reset, an action repeated
  for 4 frames with the last two max-pooled, 84x84 greyscale frames (uint8);
- ``FrameStackObservation``: the last 4 frames, ``(4, 84, 84)`` uint8;
- ``TransformReward(np.sign)``: rewards clipped to -1/0/+1, in training only;
- :class:`FireOnReset`: FIRE after a reset (and after a lost life) in games that
  wait for it (Breakout);
- :class:`EpisodicLife`: in training only, a lost life ends the episode, but the
  reset that follows goes on with the same game. gymnasium's own
  ``AtariPreprocessing(terminal_on_life_loss=True)`` resets the whole game on the
  reset that follows a lost life, so the agent would only ever play its first
  life; DeepMind's "episodic life" plays every life, as this wrapper does.
- :class:`GameScore`: innermost, sums the game's own (unclipped) rewards over
  the full game and reports them at game over in ``info["game_return"]``, which
  the training statistics use; evaluation plays full games without clipping.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from modelzoo.errors import ConfigError

__all__ = [
    "EpisodicLife",
    "FireOnReset",
    "GameScore",
    "WrapperSpec",
    "apply_wrappers",
    "is_atari_id",
    "needs_fire",
    "register_atari",
]

ATARI_FRAME_SKIP = 4
ATARI_NOOP_MAX = 30
ATARI_SCREEN = 84


@dataclass(frozen=True)
class WrapperSpec:
    """Which wrappers sit around the environment (the wrapper fields of the data section).

    Attributes:
        atari: the Atari pipeline (see the module docstring); the base environment
            must not skip frames itself (``*NoFrameskip-v4``, or ``frameskip: 1``).
        frame_stack: observations are the last N frames, stacked on a new first axis.
        frame_skip: repeat each action N times, max-pooling the last two frames
            (gymnasium's ``MaxAndSkipObservation``); Atari skips 4 frames already.
        grayscale: RGB observations become greyscale (for pixel environments such as
            CarRacing; Atari frames are greyscale already).
        resize: square side that pixel observations are resized to (e.g. 84).
        terminal_on_life_loss: in training, a lost life ends the episode (None: as ``atari``).
        sign_rewards: in training, rewards become their sign (None: as ``atari``).
    """

    atari: bool = False
    frame_stack: int = 1
    frame_skip: int = 1
    grayscale: bool = False
    resize: int | None = None
    terminal_on_life_loss: bool | None = None
    sign_rewards: bool | None = None

    def __post_init__(self) -> None:
        if self.frame_stack < 1 or self.frame_skip < 1:
            raise ConfigError(
                f"data.frame_stack and data.frame_skip must be >= 1; got "
                f"{self.frame_stack} and {self.frame_skip}"
            )
        if self.resize is not None and self.resize < 8:
            raise ConfigError(f"data.resize must be a side of at least 8 pixels; got {self.resize}")
        if self.atari and (self.grayscale or self.resize or self.frame_skip > 1):
            raise ConfigError(
                "data.atari already skips 4 frames and makes 84x84 greyscale frames; remove "
                "data.grayscale, data.resize and data.frame_skip"
            )
        if not self.atari and self.terminal_on_life_loss:
            raise ConfigError("data.terminal_on_life_loss needs data.atari (lives are Atari's)")

    @property
    def active(self) -> bool:
        """Whether any wrapper applies."""
        return self != WrapperSpec()

    @property
    def life_loss_terminal(self) -> bool:
        return self.atari if self.terminal_on_life_loss is None else self.terminal_on_life_loss

    @property
    def reward_sign(self) -> bool:
        return self.atari if self.sign_rewards is None else self.sign_rewards

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> WrapperSpec:
        """From a mapping (a card's ``input_spec``); unknown keys are an error."""
        values = dict(values or {})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown environment wrappers {sorted(unknown)}")
        return cls(**values)


def is_atari_id(env_id: str) -> bool:
    """Whether ``env_id`` names one of ale-py's environments (``ALE/...`` or ``...NoFrameskip``)."""
    return env_id.startswith("ALE/") or "NoFrameskip" in env_id or env_id.endswith("-ram-v4")


def register_atari() -> None:
    """Register ale-py's environments with gymnasium (ale-py ships the ROMs); idempotent."""
    import gymnasium as gym

    try:
        import ale_py
    except ImportError as err:
        raise ConfigError(
            "Atari environments need ale-py: pip install 'modelzoo[rl]' (or 'gymnasium[atari]')"
        ) from err
    gym.register_envs(ale_py)


def _lives(env: gym.Env) -> int:
    return int(env.unwrapped.ale.lives())


class GameScore(gym.Wrapper):
    """Sums the game's own rewards over a whole game and reports them when it ends.

    At the step that ends the game (terminated or truncated), ``info`` gets
    ``game_return`` (the unclipped score) and ``game_length`` (its steps).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._return, self._length = 0.0, 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._return, self._length = 0.0, 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        if terminated or truncated:
            info = dict(info, game_return=self._return, game_length=self._length)
        return obs, reward, terminated, truncated, info


class EpisodicLife(gym.Wrapper):
    """Training only: a lost life ends the episode; the next reset goes on with the game."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._lives, self._game_over = 0, True

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = bool(terminated or truncated)
        now = _lives(self.env)
        if 0 < now < self._lives:
            terminated = True  # the agent learns that losing a life is final
        self._lives = now
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self._game_over:
            obs, info = self.env.reset(**kwargs)
        else:  # a life was lost: go on with the same game through a no-op
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self._game_over = False
        self._lives = _lives(self.env)
        return obs, info


class FireOnReset(gym.Wrapper):
    """Press FIRE after a reset, and after a lost life when ``after_life_loss``.

    Games such as Breakout wait for FIRE before play starts. Training with
    :class:`EpisodicLife` starts every life through a reset, so a policy never has
    to learn to fire; evaluation plays full games, so it fires after a lost life too.
    """

    def __init__(self, env: gym.Env, after_life_loss: bool = False) -> None:
        super().__init__(env)
        if not needs_fire(env):
            raise ConfigError(f"{env.spec.id if env.spec else env} has no FIRE action")
        self._after_life_loss = after_life_loss
        self._lives = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        for action in (1, 2):  # FIRE, then another action, as SB3's and CleanRL's FireReset
            obs, _, terminated, truncated, _ = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self._lives = _lives(self.env)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        now = _lives(self.env)
        if self._after_life_loss and now < self._lives and not (terminated or truncated):
            obs, extra, terminated, truncated, info = self.env.step(1)
            reward = float(reward) + float(extra)
            now = _lives(self.env)
        self._lives = now
        return obs, reward, terminated, truncated, info


def needs_fire(env: gym.Env) -> bool:
    """Whether an Atari game has FIRE as action 1 (the games that wait for it)."""
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) >= 3 and meanings[1] == "FIRE"


def apply_wrappers(env: Any, spec: WrapperSpec, training: bool) -> Any:
    """Wrap a freshly made environment as ``spec`` says.

    Args:
        env: from ``gymnasium.make``.
        spec: the run's wrappers.
        training: True for the training copies (lost lives end episodes, rewards
            clipped to their sign); False for evaluation and play (full games,
            the game's own score).
    """
    if not spec.active:
        return env
    from gymnasium import wrappers as gw

    if spec.atari:
        if not hasattr(env.unwrapped, "ale"):
            name = env.spec.id if env.spec else env
            raise ConfigError(f"data.atari needs an Atari environment (ale-py); {name} is not one")
        env = GameScore(env)
        env = gw.AtariPreprocessing(
            env,
            noop_max=ATARI_NOOP_MAX,
            frame_skip=ATARI_FRAME_SKIP,
            screen_size=ATARI_SCREEN,
            terminal_on_life_loss=False,  # see EpisodicLife
            grayscale_obs=True,
            scale_obs=False,
        )
        if training and spec.life_loss_terminal:
            env = EpisodicLife(env)
        if needs_fire(env):
            env = FireOnReset(env, not (training and spec.life_loss_terminal))
    else:
        env = GameScore(env)
        if spec.frame_skip > 1:
            env = gw.MaxAndSkipObservation(env, skip=spec.frame_skip)
        if spec.grayscale:
            env = gw.GrayscaleObservation(env, keep_dim=False)
        if spec.resize:
            env = gw.ResizeObservation(env, (spec.resize, spec.resize))
    if training and spec.reward_sign:
        env = gw.TransformReward(env, lambda r: float(np.sign(r)))
    if spec.frame_stack > 1:
        env = gw.FrameStackObservation(env, spec.frame_stack)
    return env
