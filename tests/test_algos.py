"""The algorithm table: names -> classes, shared hyperparameters, traits, replay, dueling."""

from __future__ import annotations

import pytest
from stable_baselines3.common.buffers import ReplayBuffer

from custom.buffers import FrameStackReplayBuffer
from custom.dqn import DoubleDQN, ExpectedSarsaDQN, SoftmaxDQN, TargetDQN
from custom.policies import DuelingQNetwork, ReferenceCNN
from custom.schedules import TimestepSchedule
from experiments.algos import ALGORITHMS, algo_kwargs, build_model
from experiments.envs import make_env
from experiments.errors import ConfigError


@pytest.mark.parametrize(
    ("algo", "cls"),
    [
        ("dqn", TargetDQN),
        ("double_dqn", DoubleDQN),
        ("expected_sarsa", ExpectedSarsaDQN),
        ("softmax", SoftmaxDQN),
    ],
)
def test_dqn_family_shares_the_env_hyperparameters(compose_config, algo, cls) -> None:
    cfg = compose_config(f"algo={algo}", "dqn.batch_size=48", "dqn.target_update_interval=77")
    env = make_env(cfg, training=True)
    model = build_model(cfg, env)
    assert type(model) is cls
    assert (model.batch_size, model.target_update_interval) == (48, 77)
    env.close()


def test_softmax_temperature_comes_from_algo_kwargs(compose_config) -> None:
    cfg = compose_config("algo=softmax", "algo.kwargs.temperature=0.5")
    env = make_env(cfg, training=True)
    assert build_model(cfg, env).temperature == 0.5
    env.close()


def test_learning_rate_floor_is_a_schedule_of_env_steps(compose_config) -> None:
    cfg = compose_config(
        "total_timesteps=1000",
        "dqn.learning_rate=1e-2",
        "dqn.learning_rate_final=1e-4",
        "dqn.learning_rate_fraction=0.5",
    )
    env = make_env(cfg, training=True)
    model = build_model(cfg, env)
    env.close()
    assert cfg.dqn.learning_rate_anneal_steps == 500  # the fraction, kept as steps
    for step, expected in ((0, 1e-2), (250, (1e-2 + 1e-4) / 2), (500, 1e-4), (900, 1e-4)):
        model.num_timesteps = step
        # whatever SB3's progress says: a larger budget on resume does not rewind it
        assert model.lr_schedule(0.3) == pytest.approx(expected)
    constant = algo_kwargs(
        compose_config("dqn.learning_rate=3e-3", "dqn.learning_rate_final=null")
    )["learning_rate"]
    assert constant == pytest.approx(3e-3)


def test_epsilon_fraction_becomes_steps_at_launch(compose_config) -> None:
    cfg = compose_config("total_timesteps=1000", "dqn.exploration_fraction=0.2")
    env = make_env(cfg, training=True)
    model = build_model(cfg, env)
    env.close()
    assert cfg.dqn.exploration_anneal_steps == 200
    model.num_timesteps = 100
    middle = (cfg.dqn.exploration_initial_eps + cfg.dqn.exploration_final_eps) / 2
    assert model.exploration_schedule(0.0) == pytest.approx(middle)


def test_step_based_exploration_ignores_total_timesteps(compose_config) -> None:
    cfg = compose_config(
        "dqn.exploration_hold_steps=100",
        "dqn.exploration_anneal_steps=200",
        "dqn.exploration_initial_eps=1.0",
        "dqn.exploration_final_eps=0.1",
        "total_timesteps=10",
    )
    env = make_env(cfg, training=True)
    model = build_model(cfg, env)
    values = {}
    for step in (0, 100, 200, 300, 1000):
        model.num_timesteps = step
        values[step] = model.exploration_schedule(0.0)
    assert values == pytest.approx({0: 1.0, 100: 1.0, 200: 0.55, 300: 0.1, 1000: 0.1})
    env.close()


@pytest.mark.parametrize(
    ("kind", "cls"), [("standard", ReplayBuffer), ("frames", FrameStackReplayBuffer)]
)
def test_replay_kind_picks_the_buffer(compose_config, kind, cls) -> None:
    cfg = compose_config("env=breakout", f"dqn.replay.kind={kind}", "dqn.buffer_size=500")
    env = make_env(cfg, training=True)
    model = build_model(cfg, env)
    assert type(model.replay_buffer) is cls
    env.close()


def test_breakout_defaults_to_the_frame_buffer(compose_config) -> None:
    assert compose_config("env=breakout").dqn.replay.kind == "frames"
    assert compose_config("env=cartpole").dqn.replay.kind == "standard"


def test_unknown_replay_kind_is_refused(compose_config) -> None:
    with pytest.raises(
        ConfigError, match=r"^dqn.replay.kind=nope: unknown choice; use one of standard, frames"
    ):
        algo_kwargs(compose_config("dqn.replay.kind=nope"))


def test_the_step_based_epsilon_schedule_follows_the_epsilon_greedy_trait(compose_config) -> None:
    """Breakout anneals epsilon by env steps; softmax does not act epsilon-greedily at all."""
    for algo in ("dqn", "expected_sarsa", "softmax"):
        cfg = compose_config("env=breakout", f"algo={algo}", "dqn.buffer_size=500")
        env = make_env(cfg, training=True)
        model = build_model(cfg, env)
        env.close()
        installed = isinstance(model.exploration_schedule, TimestepSchedule)
        assert installed == ALGORITHMS[algo].epsilon_greedy, algo
        if algo == "softmax":
            assert model.exploration_rate == 0.0


def test_the_reference_network_and_loss_are_config_values(compose_config) -> None:
    cfg = compose_config("experiment=breakout_reference", "dqn.buffer_size=500")
    env = make_env(cfg, training=True)
    model = build_model(cfg, env)
    env.close()
    assert model.loss == "reference"
    assert isinstance(model.q_net.features_extractor, ReferenceCNN)
    default = compose_config("env=breakout")
    assert (default.dqn.loss, default.dqn.policy_kwargs.get("network")) == ("smooth_l1", None)


def test_dueling_head_is_a_policy_option(compose_config) -> None:
    cfg = compose_config("algo=expected_sarsa", "+dqn.policy_kwargs.dueling=true")
    env = make_env(cfg, training=True)
    model = build_model(cfg, env)
    assert isinstance(model.q_net, DuelingQNetwork)
    assert isinstance(model.q_net_target, DuelingQNetwork)
    env.close()
