"""MinAtar as config: every game builds with channel-first 0/1 grids, the documented action set,
sticky actions and time limit, and shares one hyperparameter file per family (Dopamine's
MinAtar values). Short runs of every game, with dqn and ppo, are in tests/test_train.py.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
from omegaconf import OmegaConf
from stable_baselines3.common.monitor import Monitor

from custom.minatar_wrappers import RgbFrames, channels_first, to_channels_first
from experiments.algos import build_model
from experiments.config import CONF_DIR, effective_config, validate
from experiments.envs import make_env, register_minatar
from experiments.errors import ConfigError

#: game -> object channels (Young & Tian 2019, Table 1 of the MinAtar paper).
CHANNELS = {"breakout": 4, "asterix": 4, "freeway": 7, "seaquest": 10, "space_invaders": 6}
GAMES = sorted(CHANNELS)

#: Dopamine's labs/environments/minatar/dqn_<game>.gin (the same for every game) and the
#: JaxDQNAgent defaults those files leave as they are, in this project's keys.
DOPAMINE_DQN = {
    "learning_rate": 2.5e-4,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "batch_size": 32,
    "gamma": 0.99,
    "target_update_interval": 1_000,
    "tau": 1.0,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.01,
    "exploration_hold_steps": 1_000,
    "exploration_anneal_steps": 250_000,
    "n_steps": 1,
    "loss": "mse",
}


def test_every_game_has_an_env_file_and_no_hyperparameter_file_of_its_own() -> None:
    assert {f"minatar_{game}" for game in GAMES} <= {p.stem for p in (CONF_DIR / "env").iterdir()}
    for family in ("dqn", "ppo"):
        for game in GAMES:
            per_game = OmegaConf.load(CONF_DIR / "hparams" / family / f"minatar_{game}.yaml")
            assert per_game == {"defaults": [f"/hparams/{family}/minatar"]}


@pytest.mark.parametrize("game", GAMES)
def test_every_game_gives_channel_first_0_1_grids_and_six_actions(compose_config, game) -> None:
    cfg = compose_config(f"env=minatar_{game}")
    validate(cfg)
    vec_env = make_env(cfg, training=True)
    try:
        shape = (CHANNELS[game], 10, 10)
        assert vec_env.observation_space == gym.spaces.Box(0, 1, shape, np.uint8)
        assert vec_env.action_space == gym.spaces.Discrete(6)  # the published set, every game
        n_envs = cfg.env.n_envs  # DQN's batched acting: several envs
        assert vec_env.env_is_wrapped(Monitor) == [True] * n_envs
        obs = vec_env.reset()
        assert obs.shape == (n_envs, *shape) and obs.dtype == np.uint8
        for _ in range(20):
            actions = [vec_env.action_space.sample() for _ in range(n_envs)]
            obs, _, _, _ = vec_env.step(np.array(actions))
            assert set(np.unique(obs)) <= {0, 1}
        game_env = vec_env.envs[0].unwrapped
        assert game_env.game.sticky_action_prob == 0.1
        assert game_env.action_set == list(range(6))
        assert vec_env.envs[0].spec.max_episode_steps == 27_000
    finally:
        vec_env.close()


def test_grids_are_the_games_state_transposed(compose_config) -> None:
    vec_env = make_env(compose_config("env=minatar_seaquest"), training=True)
    try:
        obs = vec_env.reset()
        state = vec_env.envs[0].unwrapped.game.state()  # (10, 10, C) bool, channels last
        np.testing.assert_array_equal(obs[0], np.moveaxis(state, -1, 0).astype(np.uint8))
    finally:
        vec_env.close()


def test_channels_first_refuses_a_flat_observation() -> None:
    with pytest.raises(ValueError, match="needs \\(H, W, C\\) grid observations"):
        channels_first(gym.make("CartPole-v1"))
    grid = np.zeros((10, 10, 3), bool)
    grid[1, 2, 0] = True
    chw = to_channels_first(grid)
    assert (chw.shape, chw.dtype, chw[0, 1, 2], chw.sum()) == ((3, 10, 10), np.uint8, 1, 1)
    assert chw.flags.c_contiguous


def test_the_time_limit_truncates_a_game(compose_config) -> None:
    # Freeway's own end comes at 2,500 steps, so a cut at 5 is the TimeLimit's.
    cfg = compose_config(
        "env=minatar_freeway", "env.make_kwargs.max_episode_steps=5", "eval.n_envs=1"
    )
    vec_env = make_env(cfg, training=False)
    try:
        vec_env.reset()
        for step in range(1, 6):
            _, _, dones, infos = vec_env.step(np.array([0]))
            assert dones[0] == (step == 5)
        assert infos[0]["TimeLimit.truncated"]
        assert infos[0]["episode"]["l"] == 5  # the Monitor innermost scores the cut game
    finally:
        vec_env.close()


def test_same_seed_same_games_and_eval_seeded_apart(compose_config) -> None:
    def trajectory(training: bool) -> np.ndarray:
        cfg = compose_config("env=minatar_asterix", "seed=5", "env.n_envs=1", "eval.n_envs=1")
        vec_env = make_env(cfg, training=training)
        frames = [vec_env.reset()]
        frames += [vec_env.step(np.array([i % 6]))[0] for i in range(40)]
        vec_env.close()
        return np.stack(frames)

    first = trajectory(True)
    np.testing.assert_array_equal(first, trajectory(True))
    assert not np.array_equal(first, trajectory(False))


def test_frames_render_as_uint8_images_for_gifs() -> None:
    register_minatar()
    env = RgbFrames(
        gym.make("MinAtar/Breakout-v1", render_mode="rgb_array", disable_env_checker=True), scale=4
    )
    env.reset(seed=0)
    frame = env.render()
    assert frame is not None and (frame.shape, frame.dtype) == ((40, 40, 3), np.uint8)
    env.close()


@pytest.mark.parametrize("game", GAMES)
def test_every_game_shares_dopamines_dqn_values(compose_config, game) -> None:
    dqn = effective_config(compose_config(f"env=minatar_{game}")).dqn  # as the run records it
    assert {key: dqn[key] for key in DOPAMINE_DQN} == DOPAMINE_DQN
    # Dopamine's update_period 4 with batched acting: 4 env steps per update
    n_envs = compose_config(f"env=minatar_{game}").env.n_envs
    assert n_envs * dqn.train_freq == 4 * dqn.gradient_steps
    assert dqn.policy_kwargs.network == "minatar"
    assert dqn.policy_kwargs.optimizer_kwargs.eps == 3.125e-4
    assert dqn.replay.kind == "standard" and not dqn.replay.prioritized
    ppo = compose_config(f"env=minatar_{game}", "algo=ppo").ppo
    assert ppo == compose_config("env=minatar_breakout", "algo=ppo").ppo


def test_the_adam_epsilon_reaches_the_optimizer(compose_config) -> None:
    cfg = compose_config("env=minatar_breakout", "dqn.buffer_size=100")
    vec_env = make_env(cfg, training=True)
    try:
        optimizer = build_model(cfg, vec_env).policy.optimizer
        assert optimizer.defaults["eps"] == 3.125e-4 and optimizer.defaults["lr"] == 2.5e-4
    finally:
        vec_env.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("dqn.replay.kind=frames",), "stores stacked Atari frames"),
        (("env.id=MinAtar/Breakoutt-v1",), "did you mean MinAtar/Breakout-v1"),
    ],
)
def test_misfits_are_one_line_config_errors(compose_config, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose_config("env=minatar_breakout", *overrides))


def test_the_reference_network_on_minatar_is_a_one_line_config_error(compose_config) -> None:
    cfg = compose_config("env=minatar_breakout", "dqn.policy_kwargs.network=reference")
    validate(cfg)
    vec_env = make_env(cfg, training=True)
    try:
        with pytest.raises(ConfigError, match=r"at least 36x36.*use network=minatar"):
            build_model(cfg, vec_env)
    finally:
        vec_env.close()


def test_a_missing_minatar_package_says_how_to_install_it(compose_config, monkeypatch) -> None:
    unregistered = {k: v for k, v in gym.registry.items() if not k.startswith("MinAtar/")}
    monkeypatch.setattr(gym, "registry", unregistered)
    monkeypatch.setitem(sys.modules, "minatar.gym", None)  # import minatar.gym -> ImportError
    cfg = compose_config("env=minatar_breakout")
    with pytest.raises(ConfigError, match=r"need the minatar package: pip install 'minatar"):
        validate(cfg)
    with pytest.raises(ConfigError, match=r"need the minatar package"):
        make_env(cfg, training=True)


TARGETS = ["dqn", "double_dqn", "expected_sarsa", "softmax"]


def test_the_targets_preset_sweeps_four_targets_over_five_seeds(compose_config) -> None:
    params = OmegaConf.load(CONF_DIR / "experiment/minatar_targets.yaml").hydra.sweeper.params
    assert params["algo"].split(",") == TARGETS and params["seed"] == "range(5)"
    for algo in TARGETS:
        arm = compose_config("experiment=minatar_targets", f"algo={algo}")
        validate(arm)
        assert arm.env.name == "minatar_breakout"
        assert arm.checkpoint.replay and arm.total_timesteps % arm.eval.freq == 0


def test_the_replay_preset_differs_from_the_targets_dqn_arm_in_the_swept_keys_only(
    compose_config,
) -> None:
    targets = compose_config("experiment=minatar_targets", "algo=dqn")
    for prioritized in (False, True):
        for n_steps in (1, 3):
            arm = compose_config(
                "experiment=minatar_replay",
                "algo=dqn",
                f"dqn.replay.prioritized={prioritized}",
                f"dqn.n_steps={n_steps}",
            )
            validate(arm)
            arm.dqn.replay.prioritized, arm.dqn.n_steps = False, targets.dqn.n_steps  # null: 1
            assert OmegaConf.to_container(arm) == OmegaConf.to_container(targets)
