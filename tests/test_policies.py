"""custom.policies: the optional dueling head, the reference and MinAtar networks, channels-last
layout."""

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.dqn.policies import QNetwork
from torch import nn
from torch.nn import functional as F

from custom.dqn import DoubleDQN, ExpectedSarsaDQN, SoftmaxDQN, TargetDQN
from custom.policies import (
    CnnQPolicy,
    DuelingQNetwork,
    LeanQNetwork,
    MinAtarCNN,
    QPolicy,
    ReferenceCNN,
)


class _FakeBreakout(gym.Env[np.ndarray, np.int64]):
    """Breakout's shapes only: stacked (4, 84, 84) uint8 frames, 4 actions."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
        self.action_space = gym.spaces.Discrete(4)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.int64) -> tuple:
        return self.observation_space.sample(), 0.0, False, False, {}


def _dueling(model: DQN) -> DuelingQNetwork:
    assert isinstance(model.q_net, DuelingQNetwork)
    return model.q_net


def test_policy_names_resolve_to_dueling_capable_policies() -> None:
    assert TargetDQN.policy_aliases["MlpPolicy"] is QPolicy
    assert TargetDQN.policy_aliases["CnnPolicy"] is CnnQPolicy


def test_default_is_sb3_q_network_with_the_same_function() -> None:
    model = TargetDQN("MlpPolicy", "CartPole-v1")
    assert type(model.q_net) is LeanQNetwork and isinstance(model.q_net, QNetwork)
    assert type(model.q_net_target) is LeanQNetwork
    obs = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.q_net(obs), QNetwork.forward(model.q_net, obs))


def test_the_lean_network_scales_images_as_sb3_does() -> None:
    env = FakeImageEnv(screen_height=40, screen_width=40, n_channels=1, discrete=True)
    model = TargetDQN("CnnPolicy", env, buffer_size=10)
    obs = torch.randint(0, 256, (3, 1, 40, 40), dtype=torch.uint8)
    net = model.q_net
    with torch.no_grad():
        sb3 = QNetwork.extract_features(net, obs, net.features_extractor)
        assert torch.equal(net.extract_features(obs, net.features_extractor), sb3)


def test_dueling_q_is_value_plus_centred_advantage() -> None:
    model = DoubleDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(dueling=True, net_arch=[8]))
    net = _dueling(model)
    assert isinstance(model.q_net_target, DuelingQNetwork)
    obs = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        q = net(obs)
        features = net.extract_features(obs, net.features_extractor)
        value = net.value_stream(features)
        advantage = net.advantage_stream(features)
    assert q.shape == (10, 2)
    assert value.shape == (10, 1)
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), value)
    torch.testing.assert_close(q - value, advantage - advantage.mean(dim=1, keepdim=True))


def test_dueling_cnn_on_breakout_shapes() -> None:
    model = TargetDQN(
        "CnnPolicy", _FakeBreakout(), buffer_size=10, policy_kwargs=dict(dueling=True)
    )
    net = _dueling(model)
    head = net.advantage_stream[-1]
    assert isinstance(head, nn.Linear)
    assert (head.in_features, head.out_features) == (512, 4)
    obs = np.stack([model.observation_space.sample() for _ in range(3)])
    with torch.no_grad():
        assert model.q_net(model.policy.obs_to_tensor(obs)[0]).shape == (3, 4)
    assert model.predict(obs, deterministic=True)[0].shape == (3,)


def test_dueling_trains_and_round_trips(tmp_path: Path) -> None:
    model = DoubleDQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_starts=50,
        train_freq=1,
        policy_kwargs=dict(dueling=True, net_arch=[16]),
        seed=0,
    )
    before = _dueling(model).value_stream.state_dict()["0.weight"].clone()
    model.learn(200)
    assert not torch.equal(before, _dueling(model).value_stream.state_dict()["0.weight"])

    model.save(tmp_path / "model.zip")
    loaded = DoubleDQN.load(tmp_path / "model.zip")
    assert isinstance(loaded.policy, QPolicy)
    assert loaded.policy.dueling
    _dueling(loaded)
    obs = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.q_net(torch.as_tensor(obs)), model.q_net(torch.as_tensor(obs))
        )


def test_stock_dqn_accepts_the_policy_class() -> None:
    model = DQN(QPolicy, "CartPole-v1", policy_kwargs=dict(dueling=True))
    _dueling(model)


def _breakout_model(
    cls: type[TargetDQN] = TargetDQN, loss: str = "smooth_l1", **policy_kwargs: Any
) -> TargetDQN:
    return cls("CnnPolicy", _FakeBreakout(), buffer_size=10, loss=loss, policy_kwargs=policy_kwargs)


def _reference(**policy_kwargs: Any) -> TargetDQN:
    return _breakout_model(network="reference", **policy_kwargs)


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _head_and_dense(q_net: QNetwork) -> list[nn.Linear]:
    return [m for m in q_net.modules() if isinstance(m, nn.Linear)]


def test_cnn_policy_default_is_nature_cnn() -> None:
    model = _breakout_model()
    assert type(model.q_net) is LeanQNetwork
    assert type(model.q_net.features_extractor) is NatureCNN
    assert model.policy.network == "sb3"


def test_reference_parameter_count_equals_the_keras_model() -> None:
    # Seed 000's Keras model on Breakout: input 84x84x4, 4 actions; convolutions without bias.
    #   conv 32x8x8/4: 8*8*4*32        =     8,192  -> 20x20x32  ((84 - 8) / 4 + 1 = 20)
    #   conv 64x4x4/2: 4*4*32*64       =    32,768  ->  9x9x64   ((20 - 4) / 2 + 1 = 9)
    #   conv 64x3x3/1: 3*3*64*64       =    36,864  ->  7x7x64   = 3,136 features
    #   dense 512:     3136*512 + 512  = 1,606,144
    #   q_values 4:    512*4 + 4       =     2,052
    #   total                          = 1,686,020
    expected = 8_192 + 32_768 + 36_864 + 1_606_144 + 2_052
    assert expected == 1_686_020
    model = _reference()
    for net in (model.q_net, model.q_net_target):
        assert sum(p.numel() for p in net.parameters()) == expected
        assert isinstance(net.features_extractor, ReferenceCNN)


def test_reference_convolutions_have_no_bias_and_keras_shapes() -> None:
    convs = _convs(_reference().q_net)
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    assert all(c.bias is None for c in convs)


def test_reference_convolutions_are_he_normal() -> None:
    """std within 5 % of sqrt(2 / fan_in) over 5 seeds, and untruncated (tails beyond 3 std)."""
    space = _FakeBreakout().observation_space
    stds: list[list[float]] = []
    for seed in range(5):
        torch.manual_seed(seed)
        weights = [c.weight.detach() for c in _convs(ReferenceCNN(space))]
        stds.append([float(w.std()) for w in weights])
        for w in weights:
            # a truncated normal stops at 2 std, a uniform at 1.73 std
            assert float(w.abs().max()) > 3 * math.sqrt(2 / w[0].numel())
    for w, mean_std in zip(weights, np.mean(stds, axis=0), strict=True):
        assert mean_std == pytest.approx(math.sqrt(2 / w[0].numel()), rel=0.05)


@pytest.mark.parametrize("dueling", [False, True])
def test_reference_dense_layers_are_glorot_uniform_with_zero_bias(dueling: bool) -> None:
    q_net = _reference(dueling=dueling).q_net
    layers = _head_and_dense(q_net)
    assert len(layers) == (3 if dueling else 2)  # dense 512, then output (or value, advantage)
    for layer in layers:
        limit = math.sqrt(6 / (layer.in_features + layer.out_features))
        largest = float(layer.weight.detach().abs().max())
        # within the limit, and reaching it: torch's default limit is 1 / sqrt(fan_in)
        assert 0.9 * limit < largest <= limit
        assert not layer.bias.any()


def test_reference_forward_is_the_keras_computation() -> None:
    """Scale by 1/255, three bias-free conv + ReLU, flatten, dense + ReLU, output."""
    model = _reference()
    obs = np.stack([model.observation_space.sample() for _ in range(3)])
    convs = _convs(model.q_net)
    dense, output = _head_and_dense(model.q_net)
    x = torch.as_tensor(obs).float() / 255.0
    with torch.no_grad():
        for conv in convs:
            x = F.relu(F.conv2d(x, conv.weight, stride=conv.stride))
        x = F.relu(F.linear(x.flatten(1), dense.weight, dense.bias))
        expected = F.linear(x, output.weight, output.bias)
        got = model.q_net(model.policy.obs_to_tensor(obs)[0])
    torch.testing.assert_close(got, expected)


def test_reference_dueling_q_is_value_plus_centred_advantage() -> None:
    model = _reference(dueling=True)
    net = _dueling(model)
    obs = torch.as_tensor(np.stack([model.observation_space.sample() for _ in range(5)]))
    with torch.no_grad():
        q = net(obs)
        features = net.extract_features(obs, net.features_extractor)
        value = net.value_stream(features)
    assert q.shape == (5, 4)
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), value)


def test_reference_network_and_loss_round_trip(tmp_path: Path) -> None:
    model = _breakout_model(SoftmaxDQN, loss="reference", network="reference", dueling=True)
    model.save(tmp_path / "model.zip")
    loaded = SoftmaxDQN.load(tmp_path / "model.zip")

    assert isinstance(loaded.policy, QPolicy)
    assert loaded.policy.network == "reference" and loaded.policy.dueling
    assert isinstance(loaded.q_net.features_extractor, ReferenceCNN)
    assert loaded.loss == "reference"
    for (name, ours), (_, theirs) in zip(
        model.policy.state_dict().items(), loaded.policy.state_dict().items(), strict=True
    ):
        assert torch.equal(ours, theirs), name


@pytest.mark.parametrize("dueling", ["no", "false", 0, 1, None])
def test_dueling_must_be_a_bool(dueling: object) -> None:
    with pytest.raises(TypeError, match="policy keyword dueling must be True or False"):
        TargetDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(dueling=dueling))


def test_network_must_be_known() -> None:
    with pytest.raises(
        ValueError, match="policy keyword network must be one of 'sb3', 'reference'"
    ):
        _breakout_model(network="keras")


@pytest.mark.parametrize(
    ("policy_kwargs", "message"),
    [
        (dict(net_arch=[256]), "fixed head"),
        (dict(features_extractor_class=NatureCNN), "builds its own features extractor"),
    ],
)
def test_reference_refuses_changes_to_its_layers(policy_kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _reference(**policy_kwargs)


def test_reference_needs_images() -> None:
    with pytest.raises(ValueError, match="needs image observations"):
        TargetDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(network="reference"))


def _assert_close_at_float32_scale(
    actual: torch.Tensor, expected: torch.Tensor, msg: str | None = None
) -> None:
    """Equal up to float32 rounding, which is a fraction of the tensor's own scale.

    The two layouts sum a convolution over thousands of terms in different orders, and which
    order depends on the CPU's kernels: a fixed absolute floor of 1e-6 failed on one CI
    machine for a gradient element near zero. A layout bug errs by the order of the scale.
    """
    atol = 1e-4 * expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=atol, msg=msg)


def _is_channels_last(tensor: torch.Tensor) -> bool:
    return tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous()


@pytest.mark.parametrize("network", ["sb3", "reference"])
@pytest.mark.parametrize("dueling", [False, True])
def test_channels_last_computes_the_same_q_values(network: str, dueling: bool) -> None:
    nchw = _breakout_model(network=network, dueling=dueling)
    nhwc = _breakout_model(network=network, dueling=dueling, channels_last=True)
    nhwc.policy.load_state_dict(nchw.policy.state_dict())

    for q_net in (nhwc.q_net, nhwc.q_net_target):
        convs = _convs(q_net)
        assert len(convs) == 3 and all(_is_channels_last(conv.weight) for conv in convs)
    assert not any(_is_channels_last(conv.weight) for conv in _convs(nchw.q_net))
    for batch in (1, 5):
        obs = torch.as_tensor(np.stack([nchw.observation_space.sample() for _ in range(batch)]))
        with torch.no_grad():
            _assert_close_at_float32_scale(nhwc.q_net(obs), nchw.q_net(obs))
            _assert_close_at_float32_scale(nhwc.q_net_target(obs), nchw.q_net_target(obs))


def test_channels_last_gradients_keep_the_layout_and_the_values() -> None:
    torch.manual_seed(0)
    nchw = _breakout_model()
    nhwc = _breakout_model(channels_last=True)
    nhwc.policy.load_state_dict(nchw.policy.state_dict())
    nchw.observation_space.seed(0)
    obs = torch.as_tensor(np.stack([nchw.observation_space.sample() for _ in range(8)]))
    for model in (nchw, nhwc):
        model.q_net(obs).square().mean().backward()
    for (name, a), b in zip(nchw.q_net.named_parameters(), nhwc.q_net.parameters(), strict=True):
        assert b.grad is not None and a.grad is not None
        _assert_close_at_float32_scale(b.grad, a.grad, msg=name)
        if b.dim() == 4:  # the optimizer's state follows the gradient's layout
            assert _is_channels_last(b.grad), name


def test_channels_last_round_trips(tmp_path: Path) -> None:
    model = _breakout_model(channels_last=True)
    model.save(tmp_path / "model.zip")
    loaded = TargetDQN.load(tmp_path / "model.zip")
    assert loaded.policy.channels_last
    assert all(_is_channels_last(conv.weight) for conv in _convs(loaded.q_net))
    for (name, ours), theirs in zip(
        model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs), name


def test_channels_last_changes_nothing_without_convolutions() -> None:
    plain = TargetDQN("MlpPolicy", "CartPole-v1", seed=0)
    flagged = TargetDQN("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(channels_last=True))
    for (name, a), b in zip(
        plain.policy.state_dict().items(), flagged.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b) and a.stride() == b.stride(), name


@pytest.mark.parametrize("channels_last", ["yes", 1, None])
def test_channels_last_must_be_a_bool(channels_last: object) -> None:
    with pytest.raises(TypeError, match="policy keyword channels_last must be True or False"):
        _breakout_model(channels_last=channels_last)


def test_channels_last_never_scales_a_float_input_in_place() -> None:
    model = _breakout_model(channels_last=True)
    obs = torch.rand(2, 4, 84, 84).mul_(255).contiguous(memory_format=torch.channels_last)
    before = obs.clone()
    plain = _breakout_model()
    plain.policy.load_state_dict(model.policy.state_dict())
    with torch.no_grad():
        _assert_close_at_float32_scale(model.q_net(obs), plain.q_net(obs))
    assert torch.equal(obs, before)


class _FakeMinAtarBreakout(gym.Env[np.ndarray, np.int64]):
    """MinAtar Breakout's shapes only: (4, 10, 10) 0/1 uint8 grids, MinAtar's 6 actions."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 1, (4, 10, 10), np.uint8)
        self.action_space = gym.spaces.Discrete(6)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.int64) -> tuple:
        return self.observation_space.sample(), 0.0, False, False, {}


def _minatar(cls: type[TargetDQN] = TargetDQN, **policy_kwargs: Any) -> TargetDQN:
    return cls(
        "MlpPolicy",
        _FakeMinAtarBreakout(),
        buffer_size=10,
        policy_kwargs=dict(network="minatar", **policy_kwargs),
    )


def test_minatar_parameter_count_equals_the_published_network() -> None:
    # Young & Tian (2019), examples/dqn.py, on Breakout: input 10x10x4, 6 actions.
    #   conv 16x3x3/1: 4*16*9 + 16       =     592  -> 8x8x16 = 1,024 features
    #   dense 128:     16*8*8*128 + 128  = 131,200
    #   output 6:      128*6 + 6         =     774
    #   total                            = 132,566
    expected = (4 * 16 * 9 + 16) + (16 * 8 * 8 * 128 + 128) + (128 * 6 + 6)
    assert expected == 132_566
    model = _minatar()
    for net in (model.q_net, model.q_net_target):
        assert sum(p.numel() for p in net.parameters()) == expected
        assert isinstance(net.features_extractor, MinAtarCNN)
    (conv,) = _convs(model.q_net)
    assert (conv.out_channels, conv.kernel_size, conv.stride) == (16, (3, 3), (1, 1))


@pytest.mark.parametrize("cls", [TargetDQN, DoubleDQN, ExpectedSarsaDQN, SoftmaxDQN])
def test_minatar_forward_gives_one_q_value_per_action_for_every_variant(cls) -> None:
    model = _minatar(cls)
    obs = np.stack([model.observation_space.sample() for _ in range(5)])
    with torch.no_grad():
        assert model.q_net(model.policy.obs_to_tensor(obs)[0]).shape == (5, 6)
    assert model.predict(obs, deterministic=True)[0].shape == (5,)


def test_minatar_grids_are_not_divided_by_255() -> None:
    model = _minatar()
    ones = np.ones((1, 4, 10, 10), np.uint8)
    extractor = model.q_net.features_extractor
    with torch.no_grad():
        features = model.q_net.extract_features(model.policy.obs_to_tensor(ones)[0], extractor)
        assert torch.equal(features, extractor(torch.ones(1, 4, 10, 10)))


def test_minatar_dueling_has_two_output_streams_on_the_dense_128() -> None:
    model = _minatar(dueling=True)
    net = _dueling(model)
    assert [(m.in_features, m.out_features) for m in net.value_stream] == [(128, 1)]
    assert [(m.in_features, m.out_features) for m in net.advantage_stream] == [(128, 6)]
    torso = (4 * 16 * 9 + 16) + (16 * 8 * 8 * 128 + 128)
    assert sum(p.numel() for p in net.parameters()) == torso + (128 + 1) + (128 * 6 + 6)
    obs = model.policy.obs_to_tensor(np.stack([model.observation_space.sample()] * 3))[0]
    with torch.no_grad():
        assert net(obs).shape == (3, 6)


def test_minatar_network_round_trips(tmp_path: Path) -> None:
    model = _minatar(DoubleDQN, dueling=True)
    model.save(tmp_path / "model.zip")
    loaded = DoubleDQN.load(tmp_path / "model.zip")
    assert loaded.policy.network == "minatar"
    obs = model.policy.obs_to_tensor(model.observation_space.sample()[None])[0]
    with torch.no_grad():
        torch.testing.assert_close(loaded.q_net(obs), model.q_net(obs))


@pytest.mark.parametrize(
    ("policy_kwargs", "message"),
    [
        (dict(net_arch=[64]), "fixed head"),
        (dict(features_extractor_class=NatureCNN), "builds its own features extractor"),
    ],
)
def test_minatar_refuses_changes_to_its_layers(policy_kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _minatar(**policy_kwargs)


def test_minatar_needs_grids() -> None:
    with pytest.raises(ValueError, match="needs channel-first grid observations"):
        TargetDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(network="minatar"))


def test_reference_network_on_a_minatar_grid_says_it_is_too_small() -> None:
    with pytest.raises(
        ValueError, match=r"at least 36x36.*got 10x10; on MinAtar use network=minatar"
    ):
        TargetDQN(
            "MlpPolicy",
            _FakeMinAtarBreakout(),
            buffer_size=10,
            policy_kwargs=dict(network="reference"),
        )


@pytest.mark.parametrize("dueling", [False, True])
def test_minatar_channels_last_computes_the_same_q_values(dueling: bool) -> None:
    # The DQN family turns channels_last on (conf/family/dqn.yaml), for MinAtar grids too.
    nchw = _minatar(dueling=dueling)
    nhwc = _minatar(dueling=dueling, channels_last=True)
    nhwc.policy.load_state_dict(nchw.policy.state_dict())
    grids = np.stack([nchw.observation_space.sample() for _ in range(8)])
    obs = nchw.policy.obs_to_tensor(grids)[0]
    with torch.no_grad():
        _assert_close_at_float32_scale(nhwc.q_net(obs), nchw.q_net(obs))
