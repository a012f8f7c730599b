"""Reinforcement learning on gymnasium environments: PPO, A2C, DQN, SAC and TD3, run from recipes.

A recipe whose ``task.name`` is one of :data:`ALGORITHMS` is an RL recipe; the
recipe functions in :mod:`modelzoo.train.recipes` hand it to
:class:`~modelzoo.train.rl.runner.RLRunner`::

    # modelzoo train configs/rl/ppo_cartpole.yaml
    model: {name: actor_critic, net_arch: {pi: [64, 64], vf: [64, 64]}}
    data: {name: gym, env_id: CartPole-v1, num_envs: 8}
    task: {name: ppo, n_steps: 32, total_timesteps: 100000}
    train: {lr: 1.0e-3, seed: 0}

Units: ``task.total_timesteps`` counts environment steps (summed over the
vectorized copies) and sets the length of every schedule (learning rate,
clip range, exploration), as ``train.epochs`` does for supervised runs. A
``step`` of the run (``train.max_steps``, ``log_every``, ``checkpoint_every``,
``eval_every``, the ``step`` column of metrics.csv) is one iteration: a rollout
followed by its updates. ``train.max_steps`` stops early; ``modelzoo resume``
may raise it, and the resumed run matches an uninterrupted one bit for bit on
CPU.

Heavy imports (gymnasium, the algorithms) happen on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelzoo.config import Recipe

__all__ = ["ALGORITHMS", "RLRunner", "evaluate_policy", "is_rl_recipe", "load_policy"]

ALGORITHMS = ("ppo", "a2c", "dqn", "sac", "td3")


def is_rl_recipe(recipe: Recipe) -> bool:
    """True when the recipe's task is an RL algorithm (one of :data:`ALGORITHMS`)."""
    return (recipe.task or {}).get("name") in ALGORITHMS


def __getattr__(name: str) -> Any:
    if name == "evaluate_policy":
        from modelzoo.train.rl.evaluation import evaluate_policy

        return evaluate_policy
    if name == "load_policy":
        from modelzoo.train.rl.play import load_policy

        return load_policy
    if name == "RLRunner":
        from modelzoo.train.rl.runner import RLRunner

        return RLRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
