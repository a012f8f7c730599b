"""Reinforcement-learning networks: distributions, heads, init, spaces, and a short learning run."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.rl import (
    ActorCritic,
    MLPPolicy,
    NatureCNNActorCritic,
    PolicyOutput,
    QNetwork,
    check_spaces,
    from_spaces,
)
from modelzoo.utils import output_tensors

B = 5


def _assert_orthogonal(weight: torch.Tensor, gain: float) -> None:
    """Rows (or columns, whichever are fewer) are orthogonal with norm ``gain``."""
    w = weight.detach().flatten(1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    eye = torch.eye(gram.shape[0])
    torch.testing.assert_close(gram, gain**2 * eye, atol=1e-5 * max(1.0, gain**2), rtol=0)


# --- outputs ---------------------------------------------------------------------------


def test_discrete_policy_is_a_categorical_over_actions() -> None:
    model = mz.create("mlp_policy", obs_dim=3, action_dim=4)
    dist = model(torch.randn(B, 3))
    assert isinstance(dist, Categorical)
    assert dist.batch_shape == (B,) and dist.probs.shape == (B, 4)
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(B))
    actions = dist.sample()
    assert actions.shape == (B,) and actions.dtype == torch.int64
    assert dist.log_prob(actions).shape == (B,)
    assert dist.entropy().shape == (B,)


def test_continuous_policy_is_a_diagonal_gaussian_with_state_independent_std() -> None:
    model = mz.create("mlp_policy", obs_dim=3, action_dim=2, continuous=True, log_std_init=-0.5)
    dist = model(torch.randn(B, 3))
    assert isinstance(dist, Independent) and isinstance(dist.base_dist, Normal)
    assert dist.batch_shape == (B,) and dist.event_shape == (2,)
    torch.testing.assert_close(dist.scale, torch.full((B, 2), math.exp(-0.5)))
    actions = dist.sample()
    assert actions.shape == (B, 2)
    log_prob = dist.log_prob(actions)
    assert log_prob.shape == (B,) and dist.entropy().shape == (B,)
    # Independent sums over the action dimensions.
    per_dim = Normal(dist.loc, dist.scale).log_prob(actions)
    torch.testing.assert_close(log_prob, per_dim.sum(-1))
    assert model.log_std.requires_grad and model.log_std.shape == (2,)


@pytest.mark.parametrize("continuous", [False, True])
def test_actor_critic_outputs_and_act(continuous: bool) -> None:
    model = mz.create("actor_critic", obs_dim=6, action_dim=3, continuous=continuous)
    obs = torch.randn(B, 6)
    out = model(obs)
    assert isinstance(out, PolicyOutput)
    dist, value = out
    assert value.shape == (B,) and dist.batch_shape == (B,)
    action_shape = (B, 3) if continuous else (B,)

    act = model.act(obs)
    assert act.action.shape == action_shape
    assert act.log_prob.shape == (B,) and act.value.shape == (B,)
    torch.testing.assert_close(act.log_prob, dist.log_prob(act.action))
    torch.testing.assert_close(act.value, value)

    greedy = model.act(obs, deterministic=True).action
    expected = dist.loc if continuous else dist.probs.argmax(-1)
    torch.testing.assert_close(greedy, expected)

    ev = model.evaluate_actions(obs, act.action)
    torch.testing.assert_close(ev.log_prob, act.log_prob)
    torch.testing.assert_close(ev.entropy, dist.entropy())
    torch.testing.assert_close(model.predict_values(obs), value)
    torch.testing.assert_close(output_tensors(model.get_distribution(obs)), output_tensors(dist))


def test_value_and_q_shapes() -> None:
    assert mz.create("mlp_value", obs_dim=7)(torch.randn(B, 7)).shape == (B,)
    q = mz.create("q_network", obs_dim=7, action_dim=5)
    assert q(torch.randn(B, 7)).shape == (B, 5)
    actions = q.act(torch.randn(B, 7), epsilon=0.0)
    assert actions.shape == (B,) and int(actions.max()) < 5


def test_dueling_q_is_value_plus_centred_advantage() -> None:
    model = mz.create("q_network", obs_dim=4, action_dim=3, dueling=True)
    assert not hasattr(model, "q_net")
    obs = torch.randn(B, 4)
    q = model(obs)
    latent = model.mlp(obs)
    value = model.value_net(latent)  # (B, 1)
    advantage = model.advantage_net(latent)  # (B, 3)
    torch.testing.assert_close(q.mean(-1), value.squeeze(-1))
    torch.testing.assert_close(q - value, advantage - advantage.mean(-1, keepdim=True))


# --- initialization --------------------------------------------------------------------


def test_orthogonal_init_gains() -> None:
    model = mz.create("actor_critic", obs_dim=4, action_dim=2)
    hidden = [m for m in model.mlp_extractor.modules() if isinstance(m, nn.Linear)]
    assert len(hidden) == 4  # pi and vf trunks, two layers each
    for layer in hidden:
        _assert_orthogonal(layer.weight, math.sqrt(2))
        assert not layer.bias.any()
    _assert_orthogonal(model.action_net.weight, 0.01)
    _assert_orthogonal(model.value_net.weight, 1.0)
    assert not model.action_net.bias.any() and not model.value_net.bias.any()

    cnn = mz.create("nature_cnn_actor_critic")
    for m in cnn.features_extractor.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            _assert_orthogonal(m.weight, math.sqrt(2))


def test_ortho_init_false_keeps_pytorch_default() -> None:
    model = mz.create("actor_critic", ortho_init=False)
    # PyTorch's default draws from U(-1/sqrt(64), 1/sqrt(64)); the 0.01-gain head is far smaller.
    assert model.action_net.weight.abs().max() > 0.05
    assert model.action_net.bias.abs().max() > 0


@pytest.mark.parametrize(
    "builder", [lambda: ActorCritic(continuous=True), lambda: MLPPolicy(continuous=True),
                lambda: QNetwork(dueling=True), lambda: NatureCNNActorCritic(continuous=True)],
)  # fmt: skip
def test_builds_on_meta_device(builder) -> None:
    with torch.device("meta"):
        meta = builder()
    real = builder()
    assert all(p.is_meta for p in meta.parameters())
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in real.parameters())


# --- trunks ----------------------------------------------------------------------------


def test_separate_trunks_keep_value_gradient_out_of_the_policy() -> None:
    model = mz.create("actor_critic", net_arch=dict(pi=[16, 16], vf=[8]))
    assert len(model.mlp_extractor.shared_net) == 0
    _, value = model(torch.randn(B, 4))
    value.pow(2).mean().backward()
    policy_params = [*model.mlp_extractor.policy_net.parameters(), *model.action_net.parameters()]
    assert all(p.grad is None for p in policy_params)
    assert all(p.grad is not None for p in model.mlp_extractor.value_net.parameters())


def test_shared_trunk_carries_value_gradient_into_the_policy_features() -> None:
    model = mz.create("actor_critic", net_arch=[16, 16])
    assert len(model.mlp_extractor.policy_net) == len(model.mlp_extractor.value_net) == 0
    _, value = model(torch.randn(B, 4))
    value.pow(2).mean().backward()
    assert all(p.grad is not None for p in model.mlp_extractor.shared_net.parameters())
    assert model.action_net.weight.grad is None


def test_mixed_net_arch_shares_then_splits() -> None:
    model = mz.create("actor_critic", net_arch=[32, dict(pi=[16], vf=[8])])
    ex = model.mlp_extractor
    assert [m.out_features for m in ex.shared_net if isinstance(m, nn.Linear)] == [32]
    assert (ex.latent_dim_pi, ex.latent_dim_vf) == (16, 8)
    assert model.action_net.in_features == 16 and model.value_net.in_features == 8


@pytest.mark.parametrize("net_arch", [dict(pi=[64], q=[64]), "64", [64, -1], [dict(pi=[8]), 4]])
def test_bad_net_arch_raises(net_arch) -> None:
    with pytest.raises(ConfigError, match="net_arch"):
        mz.create("actor_critic", net_arch=net_arch)


# --- inputs ----------------------------------------------------------------------------


def test_wrong_observation_shape_names_expected_and_actual() -> None:
    model = mz.create("actor_critic", obs_dim=4, action_dim=2)
    with pytest.raises(InputShapeError, match=r"\(B, 4\).*\(5, 3\).*obs_dim=3"):
        model(torch.randn(5, 3))
    with pytest.raises(InputShapeError, match=r"got shape \(4,\).*unsqueeze"):
        model(torch.randn(4))
    with pytest.raises(InputShapeError, match=r"\(B, 4\)"):
        mz.create("q_network")(torch.randn(2, 4, 1))


def test_cnn_scales_uint8_frames_and_takes_floats_as_is() -> None:
    model = mz.create("nature_cnn_actor_critic", action_dim=4).eval()
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    dist_u8, value_u8 = model(frames)
    dist_f, value_f = model(frames.float() / 255)
    torch.testing.assert_close(value_u8, value_f)
    torch.testing.assert_close(dist_u8.logits, dist_f.logits)
    assert dist_u8.logits.shape == (2, 4) and value_u8.shape == (2,)
    with pytest.raises(InputShapeError, match=r"\(B, 4, 84, 84\).*3 channels"):
        model(torch.rand(2, 3, 84, 84))
    with pytest.raises(ConfigError, match="36x36"):
        mz.create("nature_cnn_actor_critic", img_size=32)


def test_continuous_actor_critic_exports_with_its_distribution() -> None:
    model = mz.create("actor_critic", obs_dim=3, action_dim=2, continuous=True).eval()
    obs = torch.randn(B, 3)
    exported = torch.export.export(model, (obs,))
    dist, value = exported.module()(obs)
    expected = model(obs)
    torch.testing.assert_close(value, expected.value)
    torch.testing.assert_close(dist.loc, expected.dist.loc)
    torch.testing.assert_close(dist.log_prob(dist.loc), expected.dist.log_prob(dist.loc))


# --- gymnasium spaces ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "obs_dim", "action_dim", "continuous"),
    [("CartPole-v1", 4, 2, False), ("Acrobot-v1", 6, 3, False), ("Pendulum-v1", 3, 1, True)],
)
def test_from_spaces_classic_control(env_id, obs_dim, action_dim, continuous) -> None:
    env = gym.make(env_id)
    model = from_spaces(env.observation_space, env.action_space)
    assert isinstance(model, ActorCritic) and model.model_name == "actor_critic"
    assert (model.obs_dim, model.action_dim, model.continuous) == (obs_dim, action_dim, continuous)
    obs, _ = env.reset(seed=0)
    act = model.act(torch.as_tensor(obs).unsqueeze(0))
    if continuous:  # Gaussian actions are unbounded: clip them to the space, as SB3 does
        action = np.clip(act.action[0].numpy(), env.action_space.low, env.action_space.high)
    else:
        action = int(act.action)
    assert env.action_space.contains(action)
    env.step(action)
    check_spaces(model, env.observation_space, env.action_space)


def test_from_spaces_other_kinds() -> None:
    env = gym.make("CartPole-v1")
    obs = torch.as_tensor(env.reset(seed=0)[0]).unsqueeze(0)
    policy = from_spaces(env.observation_space, env.action_space, kind="policy", net_arch=[8])
    assert isinstance(policy, MLPPolicy) and policy(obs).probs.shape == (1, 2)
    assert from_spaces(env.observation_space, None, kind="value")(obs).shape == (1,)
    q = from_spaces(env.observation_space, env.action_space, kind="q_network", dueling=True)
    assert isinstance(q, QNetwork) and q(obs).shape == (1, 2)


def test_from_spaces_flattens_box_observations_of_any_shape() -> None:
    space = gym.spaces.Box(-1.0, 1.0, (3, 2), np.float32)
    model = from_spaces(space, gym.spaces.Discrete(4))
    assert model.obs_dim == 6
    assert model(torch.randn(B, 3, 2)).value.shape == (B,)
    with pytest.raises(InputShapeError, match=r"\(B, 3, 2\)"):
        model(torch.randn(B, 6))


def test_from_spaces_image_observations_get_the_nature_cnn() -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    model = from_spaces(space, gym.spaces.Discrete(6))
    assert isinstance(model, NatureCNNActorCritic)
    assert model.model_name == "nature_cnn_actor_critic"
    frames = torch.as_tensor(np.stack([space.sample(), space.sample()]))
    dist, value = model(frames)
    assert dist.probs.shape == (2, 6) and value.shape == (2,)


def test_from_spaces_gives_image_q_networks_the_nature_cnn() -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    model = from_spaces(space, gym.spaces.Discrete(6), kind="q_network").eval()
    assert model.model_name == "nature_cnn_q_network"
    frames = torch.as_tensor(np.stack([space.sample(), space.sample()]))
    with torch.no_grad():
        assert model(frames).shape == (2, 6)


@pytest.mark.parametrize(
    ("obs_space", "action_space", "kind", "why"),
    [
        (gym.spaces.Box(-1, 1, (4,)), gym.spaces.MultiDiscrete([2, 3]), "actor_critic", "Discrete"),
        (gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (4,))}), gym.spaces.Discrete(2),
         "actor_critic", "Box"),
        (gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-2, 2, (1,)), "q_network", "discrete"),
        (gym.spaces.Box(0, 255, (84, 84, 4), np.uint8), gym.spaces.Discrete(6), "actor_critic",
         "channels first"),
        (gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6), "policy",
         "convolutional"),
    ],
)  # fmt: skip
def test_from_spaces_unsupported_combinations_name_both_spaces(
    obs_space, action_space, kind, why
) -> None:
    with pytest.raises(ConfigError) as info:
        from_spaces(obs_space, action_space, kind=kind)
    message = str(info.value)
    assert str(obs_space) in message and str(action_space) in message and why in message


def test_check_spaces_reports_mismatches() -> None:
    cartpole, acrobot, pendulum = (
        gym.make(i) for i in ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
    )
    model = mz.create("actor_critic", obs_dim=4, action_dim=2)
    check_spaces(model, cartpole.observation_space, cartpole.action_space)
    with pytest.raises(ConfigError, match=r"shape \(4,\).*shape \(6,\)"):
        check_spaces(model, acrobot.observation_space, acrobot.action_space)
    with pytest.raises(ConfigError, match="2 discrete actions.*has 3 discrete"):
        check_spaces(model, cartpole.observation_space, acrobot.action_space)
    with pytest.raises(ConfigError, match="2 discrete actions.*continuous actions of size 1"):
        check_spaces(model, cartpole.observation_space, pendulum.action_space)
    gaussian = mz.create("actor_critic", obs_dim=4, action_dim=2, continuous=True)
    with pytest.raises(ConfigError, match="2 continuous actions.*has 2 discrete"):
        check_spaces(gaussian, cartpole.observation_space, cartpole.action_space)


# --- learning --------------------------------------------------------------------------


def _run_episodes(model: ActorCritic, envs: list[gym.Env], seed: int):
    """One episode in each env, acting in lockstep; returns per-step tensors (T, N)."""
    n = len(envs)
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    alive = np.ones(n, dtype=bool)
    steps = []
    with torch.no_grad():
        while alive.any():
            o = torch.as_tensor(obs.copy())
            out = model.act(o)
            rewards, mask = np.zeros(n, np.float32), alive.copy()
            for i in np.flatnonzero(alive):
                obs[i], rewards[i], terminated, truncated, _ = envs[i].step(int(out.action[i]))
                alive[i] = not (terminated or truncated)
            steps.append(
                (o, out.action, out.log_prob, torch.as_tensor(rewards), torch.tensor(mask))
            )
    return [torch.stack(t) for t in zip(*steps, strict=True)]


def test_short_ppo_run_learns_cartpole(one_thread) -> None:
    torch.manual_seed(0)
    envs = [gym.make("CartPole-v1", max_episode_steps=200) for _ in range(16)]
    model = from_spaces(envs[0].observation_space, envs[0].action_space)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    def mean_return(seed: int) -> float:
        rewards = _run_episodes(model, envs, seed)[3]
        return rewards.sum(0).mean().item()

    before = mean_return(10**6)
    assert before < 40  # the fresh policy is near uniform, like a random one (~22)
    for it in range(40):
        obs, actions, old_log_prob, rewards, mask = _run_episodes(model, envs, 1000 * it)
        if rewards.sum(0).mean() >= 175:
            break
        returns, running = torch.zeros_like(rewards), torch.zeros(len(envs))
        for t in reversed(range(len(rewards))):
            running = rewards[t] + 0.99 * running
            returns[t] = running
        obs, actions, old_log_prob, returns = (
            x[mask] for x in (obs, actions, old_log_prob, returns)
        )
        for _ in range(4):  # PPO's clipped surrogate, full batch
            log_prob, _, value = model.evaluate_actions(obs, actions)
            adv = returns - value.detach()
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            ratio = (log_prob - old_log_prob).exp()
            policy_loss = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
            loss = policy_loss + 0.5 * (returns - value).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = mean_return(10**6)
    assert after >= 100, f"mean return {after:.1f} after training (before: {before:.1f})"
