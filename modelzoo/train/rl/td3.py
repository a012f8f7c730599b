"""Twin Delayed DDPG (Fujimoto et al., "Addressing Function Approximation Error in
Actor-Critic Methods", ICML 2018), as in SB3 and CleanRL.

Each iteration steps the environments ``train_freq`` times with the actor's
action plus Gaussian exploration noise (``action_noise``, in squashed units;
uniformly random actions until ``learning_starts``), then takes
``gradient_steps`` gradient steps: the twin critics towards the smaller target
critic at the target actor's smoothed action (noise ``target_policy_noise``,
clipped to ``target_noise_clip``); every ``policy_delay`` steps, the actor
towards the first critic's value and both target networks towards the online
ones by ``tau``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from modelzoo.errors import ConfigError
from modelzoo.train.rl.base import OffPolicyActorCritic, OffPolicyConfig

__all__ = ["TD3", "TD3Config"]


@dataclass
class TD3Config(OffPolicyConfig):
    """The ``task`` section of a TD3 recipe (defaults: SB3's and CleanRL's TD3)."""

    name: ClassVar[str] = "td3"

    policy_delay: int = 2  # critic updates per actor (and target) update
    action_noise: float = 0.1  # std of the exploration noise, in squashed units
    target_policy_noise: float = 0.2  # std of the target policy smoothing noise
    target_noise_clip: float = 0.5  # its clip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.policy_delay < 1:
            raise ConfigError(f"task.policy_delay must be >= 1; got {self.policy_delay}")
        for key in ("action_noise", "target_policy_noise", "target_noise_clip"):
            if getattr(self, key) < 0:
                raise ConfigError(f"task.{key} must be >= 0; got {getattr(self, key)}")


class TD3(OffPolicyActorCritic):
    """TD3 on a ``td3_policy`` (deterministic actor, twin critics)."""

    config_class = TD3Config
    model_kinds = ("td3_policy",)
    config: TD3Config

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        action = self.model.actor_action(obs)
        noise = torch.randn_like(action) * self.config.action_noise
        return (action + noise).clamp(-1.0, 1.0)

    def train_step(self, step: int) -> dict[str, float]:
        cfg, model = self.config, self.model
        batch = self.replay.sample(cfg.batch_size, self.device)
        with torch.no_grad(), self.precision.autocast():
            smoothing = torch.randn_like(batch.actions) * cfg.target_policy_noise
            smoothing = smoothing.clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
            next_actions = (self.target.actor_action(batch.next_obs) + smoothing).clamp(-1, 1)
            next_q = self.target.q_values(batch.next_obs, next_actions).float().min(dim=1).values
        target_q = batch.rewards + (~batch.terminated) * cfg.gamma * next_q
        with self.precision.autocast():
            current_q = model.q_values(batch.obs, batch.actions).float()
        critic_loss = sum(F.mse_loss(current_q[:, i], target_q) for i in range(current_q.shape[1]))
        self.step_optimizer(critic_loss, self.optimizer, step, "TD3 critic loss")
        metrics = {"critic_loss": critic_loss.item(), "q_values": float(current_q.detach().mean())}

        if (self.num_updates + 1) % cfg.policy_delay == 0:
            model.critic.requires_grad_(False)  # see SAC: only the actor learns from this loss
            try:
                with self.precision.autocast():
                    q = model.q_values(batch.obs, model.actor_action(batch.obs)).float()
                actor_loss = -q[:, 0].mean()
                self.step_optimizer(actor_loss, self.actor_optimizer, step, "TD3 actor loss")
            finally:
                model.critic.requires_grad_(True)
            self.polyak(self.target, model)
            metrics["actor_loss"] = actor_loss.item()
        return metrics
