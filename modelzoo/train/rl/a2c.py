"""Advantage Actor-Critic (Mnih et al., "Asynchronous Methods for Deep Reinforcement
Learning", ICML 2016), the synchronous variant (A2C) of SB3 and OpenAI Baselines.

Each iteration collects ``n_steps`` (5 by default) from every environment and takes
one gradient step on the whole rollout: the policy gradient weighted by the
advantages, the value loss and the entropy bonus. With ``gae_lambda=1`` the
advantages are n-step returns minus the values, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F

from modelzoo.train.rl.base import OnPolicyAlgorithm, OnPolicyConfig

__all__ = ["A2C", "A2CConfig"]


@dataclass
class A2CConfig(OnPolicyConfig):
    """The ``task`` section of an A2C recipe (defaults: SB3's A2C)."""

    name: ClassVar[str] = "a2c"

    n_steps: int = 5
    gae_lambda: float = 1.0
    normalize_advantage: bool = False


class A2C(OnPolicyAlgorithm):
    """A2C on an actor-critic (``PolicyOutput(dist, value)``)."""

    config_class = A2CConfig
    config: A2CConfig

    def update(self, step: int) -> dict[str, float]:
        cfg = self.config
        batch = next(self.buffer.batches(None))  # the whole rollout, one gradient step
        with self.precision.autocast():
            log_prob, entropy, values = self.model.evaluate_actions(batch.obs, batch.actions)
        log_prob, entropy, values = log_prob.float(), entropy.float(), values.float()
        advantages = batch.advantages
        if cfg.normalize_advantage and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = F.mse_loss(values, batch.returns)
        entropy_mean = entropy.mean()
        loss = policy_loss - cfg.ent_coef * entropy_mean + cfg.vf_coef * value_loss
        self.optimize(loss, step, "A2C loss")
        return {
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
            "entropy": entropy_mean.item(),
        }
