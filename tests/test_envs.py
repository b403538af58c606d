"""make_env: seeded VecEnvs with the Monitor innermost; evaluation plays whole games."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor

from experiments.config import validate
from experiments.envs import make_env
from experiments.errors import ConfigError


@pytest.mark.parametrize(
    ("env", "obs_shape"),
    [
        ("cartpole", (4,)),
        ("frozenlake", ()),
        ("breakout", (4, 84, 84)),
        ("breakout_sb3", (84, 84, 4)),
    ],
)
def test_env_has_expected_observation_and_monitor_innermost(compose_config, env, obs_shape) -> None:
    cfg = compose_config(f"env={env}")
    vec_env = make_env(cfg, training=True)
    try:
        assert vec_env.observation_space.shape == obs_shape
        assert vec_env.env_is_wrapped(Monitor) == [True]
        obs = vec_env.reset()
        assert obs.shape == (1, *obs_shape)
    finally:
        vec_env.close()


def test_n_envs_and_eval_n_envs_are_honoured(compose_config) -> None:
    cfg = compose_config("env.n_envs=3", "eval.n_envs=2")
    train_env, eval_env = make_env(cfg, training=True), make_env(cfg, training=False)
    assert (train_env.num_envs, eval_env.num_envs) == (3, 2)
    train_env.close()
    eval_env.close()


def test_same_seed_same_episode_and_eval_env_seeded_apart(compose_config) -> None:
    cfg = compose_config("seed=3")
    first, again, evaluation = (make_env(cfg, True), make_env(cfg, True), make_env(cfg, False))
    np.testing.assert_array_equal(first.reset(), again.reset())
    assert not np.array_equal(first.reset(), evaluation.reset())
    for env in (first, again, evaluation):
        env.close()


def _play_until_done(vec_env, max_steps: int = 5000):
    rng = np.random.default_rng(0)
    vec_env.reset()
    for _ in range(max_steps):
        _, _, dones, infos = vec_env.step(rng.integers(0, 4, size=vec_env.num_envs))
        if dones.any():
            return infos[int(dones.argmax())]
    raise AssertionError("no episode end")


@pytest.mark.parametrize("env", ["breakout", "breakout_sb3"])
def test_breakout_training_episode_ends_at_life_loss_but_eval_plays_the_game(compose_config, env):
    cfg = compose_config(f"env={env}")
    train_env, eval_env = make_env(cfg, training=True), make_env(cfg, training=False)
    try:
        assert _play_until_done(train_env)["lives"] == 4  # a life lost: a training terminal
        info = _play_until_done(eval_env)
        assert info["lives"] == 0
        assert "episode" in info  # Monitor's whole-game score
    finally:
        train_env.close()
        eval_env.close()


def test_reference_breakout_options_reach_the_wrappers(compose_config) -> None:
    cfg = compose_config("env=breakout", "env.wrapper_kwargs.history=2")
    vec_env = make_env(cfg, training=True)
    assert vec_env.observation_space.shape == (2, 84, 84)
    vec_env.close()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "+env.wrapper_kwargs.histroy=3",
            "env.wrapper_kwargs: .*histroy.*; known options: history",
        ),
        ("env.wrapper_kwargs.history_reset=stale", "env.wrapper_kwargs: history_reset must be"),
        ("env.wrapper=nope", "env.wrapper=nope: unknown choice; use one of none, sb3_atari, atari"),
    ],
)
def test_bad_wrapper_options_are_one_line_config_errors(compose_config, override, message) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose_config("env=breakout", override))
