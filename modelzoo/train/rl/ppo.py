"""Proximal Policy Optimization (Schulman et al., "Proximal Policy Optimization Algorithms",
arXiv 1707.06347, 2017), the clipped-objective variant, as in SB3 and CleanRL.

Each iteration collects ``n_steps`` from every environment, estimates advantages
with GAE, then runs ``n_epochs`` passes of shuffled minibatches over the rollout:
the clipped surrogate objective, an (optionally clipped) value loss and an
entropy bonus. Discrete actions use a categorical policy, continuous ones a
diagonal Gaussian whose samples are clipped to the action bounds before they
reach the environment (the stored, unclipped sample is what the loss scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from modelzoo.errors import ConfigError
from modelzoo.train.rl.base import OnPolicyAlgorithm, OnPolicyConfig
from modelzoo.train.rl.envs import GymDataConfig

__all__ = ["PPO", "PPOConfig"]


@dataclass
class PPOConfig(OnPolicyConfig):
    """The ``task`` section of a PPO recipe (defaults: CleanRL's PPO with SB3's names)."""

    name: ClassVar[str] = "ppo"
    positive: ClassVar[tuple[str, ...]] = (
        "total_timesteps",
        "n_steps",
        "n_epochs",
        "minibatch_size",
    )

    clip_range: float = 0.2  # ratio clipping of the surrogate objective
    anneal_clip_range: bool = False  # decay clip_range linearly to 0 over total_timesteps
    clip_range_vf: float | None = None  # clip value updates around the old values (null: off)
    n_epochs: int = 4  # passes over each rollout
    minibatch_size: int = 256  # samples per gradient step
    anneal_lr: bool = True
    target_kl: float | None = None  # stop an iteration's epochs once approx. KL > 1.5 x this

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clip_range <= 0:
            raise ConfigError(f"task.clip_range must be > 0; got {self.clip_range}")

    def shrink_for_dry_run(self, data: GymDataConfig) -> None:
        super().shrink_for_dry_run(data)
        self.n_epochs = 1
        self.minibatch_size = min(self.minibatch_size, 16)


class PPO(OnPolicyAlgorithm):
    """PPO-clip on an actor-critic (``PolicyOutput(dist, value)``)."""

    config_class = PPOConfig
    config: PPOConfig

    def update(self, step: int) -> dict[str, float]:
        cfg = self.config
        clip = cfg.clip_range * (self.progress_remaining() if cfg.anneal_clip_range else 1.0)
        sums: dict[str, float] = {}
        count = 0
        stopped_early = False
        for _ in range(cfg.n_epochs):
            for batch in self.buffer.batches(cfg.minibatch_size):
                with self.precision.autocast():
                    log_prob, entropy, values = self.model.evaluate_actions(
                        batch.obs, batch.actions
                    )
                log_prob, entropy, values = log_prob.float(), entropy.float(), values.float()
                advantages = batch.advantages
                if cfg.normalize_advantage and advantages.numel() > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                log_ratio = log_prob - batch.old_log_prob
                ratio = log_ratio.exp()
                policy_loss = -torch.min(
                    advantages * ratio, advantages * ratio.clamp(1 - clip, 1 + clip)
                ).mean()
                if cfg.clip_range_vf is not None:
                    values = batch.old_values + (values - batch.old_values).clamp(
                        -cfg.clip_range_vf, cfg.clip_range_vf
                    )
                value_loss = F.mse_loss(values, batch.returns)
                entropy_mean = entropy.mean()
                loss = policy_loss - cfg.ent_coef * entropy_mean + cfg.vf_coef * value_loss
                with torch.no_grad():
                    approx_kl = float(((ratio - 1) - log_ratio).mean())  # Schulman's k3 estimator
                    clip_fraction = float(((ratio - 1).abs() > clip).float().mean())
                if cfg.target_kl is not None and approx_kl > 1.5 * cfg.target_kl:
                    stopped_early = True
                    break
                self.optimize(loss, step, "PPO loss")
                for key, value in (
                    ("policy_loss", policy_loss.item()),
                    ("value_loss", value_loss.item()),
                    ("entropy", entropy_mean.item()),
                    ("approx_kl", approx_kl),
                    ("clip_fraction", clip_fraction),
                ):
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
            if stopped_early:
                break
        metrics = {k: v / max(count, 1) for k, v in sums.items()}
        metrics["clip_range"] = clip
        return metrics
