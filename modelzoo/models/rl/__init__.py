"""Reinforcement-learning networks: policies, value functions, actor-critics and Q-networks.

- Williams, "Simple statistical gradient-following algorithms for connectionist
  reinforcement learning" (Machine Learning, 1992): stochastic policies trained
  through the log-likelihood of their actions (``mlp_policy``).
- Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning" (ICML 2016)
  and Schulman et al., "Proximal Policy Optimization Algorithms" (arXiv 1707.06347,
  2017): actor-critics with a policy and a value head (``actor_critic``).
- Mnih et al., "Human-level control through deep reinforcement learning" (Nature,
  2015): the DQN Q-network and its convolutional trunk (``q_network``,
  ``nature_cnn_actor_critic``); Wang et al., "Dueling Network Architectures for Deep
  Reinforcement Learning" (ICML 2016): ``q_network(dueling=True)``.
- Haarnoja et al., "Soft Actor-Critic" (ICML 2018) and Fujimoto et al., "Addressing
  Function Approximation Error in Actor-Critic Methods" (ICML 2018): a squashed-Gaussian
  or deterministic actor with twin Q critics for bounded continuous actions
  (``sac_policy``, ``td3_policy``).

Conventions follow Stable-Baselines3 (SB3) and CleanRL. ``net_arch`` describes the
hidden layers: a list ``[64, 64]`` is one trunk shared by the policy and the value
head; ``dict(pi=[64, 64], vf=[64, 64])`` gives each head its own trunk; and
``[64, dict(pi=[32], vf=[32])]`` shares the first layers, then splits (the format of
SB3 before 1.8; SB3 1.8+ reads a plain list as two separate trunks of that shape).
Weights start orthogonal with gain sqrt(2) in hidden layers, 0.01 in the policy head
and 1.0 in value and Q heads, biases at zero (``ortho_init=False`` keeps PyTorch's
default initialization). Module names follow SB3's policies (``mlp_extractor.policy_net``,
``action_net``, ``value_net``, ``log_std``, ``features_extractor.cnn``).

Policies return ``torch.distributions`` objects: a categorical over logits for
discrete actions, or a diagonal Gaussian with a learnable, state-independent
``log_std`` for continuous ones, whose ``log_prob`` and ``entropy`` sum over the
action dimensions. Both are registered as pytree nodes, so ``torch.export`` can
return them. Continuous actions are not squashed: clip them to the action space's
bounds before ``env.step``, as SB3 does.

``from_spaces(env.observation_space, env.action_space)`` builds the network that fits
a gymnasium environment and ``check_spaces`` checks a built one against it.

The modules: ``distributions`` (what the networks return), ``common`` (the trunks,
initialization and observation checks they share), ``policies`` (the PPO, A2C and DQN
networks), ``continuous`` (SAC's and TD3's) and ``spaces`` (``from_spaces``,
``check_spaces``).
"""

from __future__ import annotations

from modelzoo.models.rl.common import MlpExtractor, NatureCNN
from modelzoo.models.rl.continuous import (
    ContinuousCritic,
    SACOutput,
    SACPolicy,
    TD3Output,
    TD3Policy,
)
from modelzoo.models.rl.distributions import (
    ActionOutput,
    CategoricalDistribution,
    DiagGaussianDistribution,
    EvaluationOutput,
    PolicyOutput,
)
from modelzoo.models.rl.policies import (
    ActorCritic,
    MLPPolicy,
    MLPValue,
    NatureCNNActorCritic,
    NatureCNNQNetwork,
    QNetwork,
)
from modelzoo.models.rl.spaces import check_spaces, from_spaces

__all__ = [
    "ActionOutput",
    "ActorCritic",
    "CategoricalDistribution",
    "ContinuousCritic",
    "DiagGaussianDistribution",
    "EvaluationOutput",
    "MLPPolicy",
    "MLPValue",
    "MlpExtractor",
    "NatureCNN",
    "NatureCNNActorCritic",
    "NatureCNNQNetwork",
    "PolicyOutput",
    "QNetwork",
    "SACOutput",
    "SACPolicy",
    "TD3Output",
    "TD3Policy",
    "check_spaces",
    "from_spaces",
]
