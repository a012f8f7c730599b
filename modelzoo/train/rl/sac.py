"""Soft Actor-Critic (Haarnoja et al., "Soft Actor-Critic: Off-Policy Maximum Entropy Deep
Reinforcement Learning with a Stochastic Actor", ICML 2018), with the automatic entropy
tuning of "Soft Actor-Critic Algorithms and Applications" (arXiv 1812.05905, 2018), as in
SB3 and CleanRL.

Each iteration steps the environments ``train_freq`` times with actions sampled
from the squashed-Gaussian actor (uniformly random until ``learning_starts``),
storing them in a replay buffer, then takes ``gradient_steps`` gradient steps,
each in SB3's order: the entropy coefficient towards ``target_entropy`` (by
default minus the action dimension), the twin critics towards the soft Bellman
target of the target critics (the smaller of the two, minus the entropy term),
the actor towards the smaller critic's value plus entropy; then the target
critics move towards the critics by ``tau``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from modelzoo.errors import ConfigError
from modelzoo.train.rl.base import OffPolicyActorCritic, OffPolicyConfig

__all__ = ["SAC", "SACConfig"]


@dataclass
class SACConfig(OffPolicyConfig):
    """The ``task`` section of a SAC recipe (defaults: SB3's SAC)."""

    name: ClassVar[str] = "sac"

    ent_coef: float | str = "auto"  # entropy weight alpha; "auto" (or "auto_0.1") learns it
    target_entropy: float | str = "auto"  # "auto": -action_dim
    target_update_interval: int = 1  # gradient steps between target updates

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.ent_coef, str):
            if not self.ent_coef.startswith("auto"):
                raise ConfigError(
                    f"task.ent_coef must be a number, 'auto' or 'auto_<initial value>'; "
                    f"got {self.ent_coef!r}"
                )
            if self.initial_ent_coef() <= 0:
                raise ConfigError(f"task.ent_coef's initial value must be > 0: {self.ent_coef}")
        elif self.ent_coef < 0:
            raise ConfigError(f"task.ent_coef must be >= 0; got {self.ent_coef}")
        if isinstance(self.target_entropy, str) and self.target_entropy != "auto":
            raise ConfigError(
                f"task.target_entropy must be a number or 'auto'; got {self.target_entropy!r}"
            )
        if self.target_update_interval < 1:
            raise ConfigError(
                f"task.target_update_interval must be >= 1; got {self.target_update_interval}"
            )

    @property
    def learns_ent_coef(self) -> bool:
        return isinstance(self.ent_coef, str)

    def initial_ent_coef(self) -> float:
        if not isinstance(self.ent_coef, str):
            return float(self.ent_coef)
        _, _, value = self.ent_coef.partition("_")
        try:
            return float(value) if value else 1.0
        except ValueError:
            raise ConfigError(
                f"task.ent_coef={self.ent_coef!r}: the part after 'auto_' must be a number"
            ) from None


class SAC(OffPolicyActorCritic):
    """SAC on a ``sac_policy`` (squashed-Gaussian actor, twin critics)."""

    config_class = SACConfig
    model_kinds = ("sac_policy",)
    config: SACConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        self.target_entropy = (
            -float(self.model.action_dim)
            if cfg.target_entropy == "auto"
            else float(cfg.target_entropy)
        )
        log_ent = torch.full((1,), math.log(cfg.initial_ent_coef()), device=self.device)
        self.log_ent_coef = log_ent.requires_grad_(cfg.learns_ent_coef)
        self.ent_coef_optimizer = (
            torch.optim.Adam([self.log_ent_coef], lr=self.base_lr) if cfg.learns_ent_coef else None
        )

    def optimizers(self) -> list[torch.optim.Optimizer]:
        extra = [self.ent_coef_optimizer] if self.ent_coef_optimizer is not None else []
        return super().optimizers() + extra

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model.sample(obs)[0]

    def train_step(self, step: int) -> dict[str, float]:
        cfg, model = self.config, self.model
        batch = self.replay.sample(cfg.batch_size, self.device)
        metrics: dict[str, float] = {}
        with self.precision.autocast():
            actions_pi, log_prob = model.sample(batch.obs)
        log_prob = log_prob.float()
        if self.ent_coef_optimizer is not None:
            ent_coef = self.log_ent_coef.detach().exp()
            ent_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
            self.step_optimizer(ent_loss, self.ent_coef_optimizer, step, "entropy coefficient loss")
            metrics["ent_coef_loss"] = ent_loss.item()
        else:
            ent_coef = self.log_ent_coef.exp()
        metrics["ent_coef"] = float(ent_coef)

        with torch.no_grad(), self.precision.autocast():
            next_actions, next_log_prob = model.sample(batch.next_obs)
            next_q = self.target.q_values(batch.next_obs, next_actions).float().min(dim=1).values
            next_q = next_q - ent_coef * next_log_prob.float()
        target_q = batch.rewards + (~batch.terminated) * cfg.gamma * next_q
        with self.precision.autocast():
            current_q = model.q_values(batch.obs, batch.actions).float()  # (B, n_critics)
        critic_loss = 0.5 * sum(
            F.mse_loss(current_q[:, i], target_q) for i in range(current_q.shape[1])
        )
        self.step_optimizer(critic_loss, self.optimizer, step, "SAC critic loss")

        # The actor's loss reaches the critics' weights only through the actions: freezing
        # them spares the backward pass their weight gradients, which nothing would use.
        model.critic.requires_grad_(False)
        try:
            with self.precision.autocast():
                q_pi = model.q_values(batch.obs, actions_pi).float().min(dim=1).values
            actor_loss = (ent_coef * log_prob - q_pi).mean()
            self.step_optimizer(actor_loss, self.actor_optimizer, step, "SAC actor loss")
        finally:
            model.critic.requires_grad_(True)

        if (self.num_updates + 1) % cfg.target_update_interval == 0:
            self.polyak(self.target.critic, model.critic)
        metrics.update(
            critic_loss=critic_loss.item(),
            actor_loss=actor_loss.item(),
            q_values=float(current_q.detach().mean()),
            entropy=float(-log_prob.detach().mean()),
        )
        return metrics

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["log_ent_coef"] = self.log_ent_coef.detach().clone()
        if self.ent_coef_optimizer is not None:
            state["ent_coef_optimizer"] = self.ent_coef_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.log_ent_coef.copy_(state["log_ent_coef"])
        if self.ent_coef_optimizer is not None:
            self.ent_coef_optimizer.load_state_dict(state["ent_coef_optimizer"])
