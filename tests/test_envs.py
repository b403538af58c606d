"""make_env: seeded VecEnvs with the Monitor innermost; evaluation plays whole games."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor

from experiments.config import validate
from experiments.envs import ALE_MAX_FRAMES, make_env
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


def _play_until(vec_env, ended, actions=(0, 1, 2, 3), max_steps: int = 20_000):
    """Step with random ``actions`` until ``ended(done, info)``; return (steps, that info)."""
    rng = np.random.default_rng(0)
    vec_env.reset()
    for step in range(1, max_steps + 1):
        _, _, dones, infos = vec_env.step(rng.choice(actions, size=vec_env.num_envs))
        for done, info in zip(dones, infos, strict=True):
            if ended(done, info):
                return step, info
    raise AssertionError(f"no end within {max_steps} steps")


def _any_done(done, info) -> bool:
    return bool(done)


def _game_over(done, info) -> bool:
    return bool(done) and "episode" in info  # the Monitor's whole-game record


@pytest.mark.parametrize("env", ["breakout", "breakout_sb3"])
def test_breakout_training_episode_ends_at_life_loss_but_eval_scores_the_game(compose_config, env):
    cfg = compose_config(f"env={env}")
    train_env, eval_env = make_env(cfg, training=True), make_env(cfg, training=False)
    try:
        assert _play_until(train_env, _any_done)[1]["lives"] == 4  # a training terminal
        _, info = _play_until(eval_env, _game_over)
        assert info["lives"] == 0
        assert not info["TimeLimit.truncated"]
    finally:
        train_env.close()
        eval_env.close()


@pytest.mark.parametrize(
    ("env", "overrides"),
    [
        ("breakout", ()),
        ("breakout_sb3", ()),
        ("breakout_sb3", ("env.id=BreakoutNoFrameskip-v4",)),
    ],
)
def test_eval_games_end_with_a_policy_that_never_fires(compose_config, env, overrides) -> None:
    """The env launches every ball: NOOP/RIGHT/LEFT alone lose 5 balls in a few thousand steps."""
    eval_env = make_env(compose_config(f"env={env}", *overrides), training=False)
    try:
        steps, info = _play_until(eval_env, _game_over, actions=(0, 2, 3), max_steps=3000)
        assert info["lives"] == 0
        assert info["episode"]["l"] >= steps  # the Monitor also counts frames or FIREs within
    finally:
        eval_env.close()


def test_atari_games_are_cut_at_108k_frames_whatever_the_env_id(compose_config) -> None:
    """An id registered without the ALE's standard cap still gets it; make_kwargs can change it."""
    gym.register(
        "test/BreakoutUncapped-v0",
        entry_point="ale_py.env:AtariEnv",
        kwargs={"game": "breakout", "frameskip": 1, "repeat_action_probability": 0.0},
    )
    uncapped = gym.make("test/BreakoutUncapped-v0")
    assert uncapped.unwrapped.ale.getInt("max_num_frames_per_episode") == 0
    uncapped.close()
    for overrides, cap in (
        ((), ALE_MAX_FRAMES),
        (("+env.make_kwargs.max_num_frames_per_episode=4000",), 4000),
    ):
        cfg = compose_config("env=breakout_sb3", "env.id=test/BreakoutUncapped-v0", *overrides)
        for training in (True, False):
            vec_env = make_env(cfg, training=training)
            assert vec_env.get_attr("ale")[0].getInt("max_num_frames_per_episode") == cap
            vec_env.close()


def test_a_cut_eval_game_is_a_truncation(compose_config) -> None:
    cfg = compose_config("env=breakout_sb3", "+env.make_kwargs.max_num_frames_per_episode=400")
    eval_env = make_env(cfg, training=False)
    try:
        _, info = _play_until(eval_env, _game_over, actions=(0,), max_steps=200)
        assert info["TimeLimit.truncated"]
        assert info["episode"]["l"] == 400  # frames: the Monitor sits on the frameskip-1 ALE
    finally:
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
