"""custom/evaluation.py: n full games on evaluate_policy, epsilon, truncations, frames, GIF,
stops between env steps, progress lines, the up-front check of the GIF's renderer."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.atari_wrappers import AtariWrapper
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from custom import evaluation
from custom.atari_wrappers import AtariOptions, atari_make_kwargs, wrap_atari
from custom.evaluation import (
    EvaluationStopped,
    GameTracker,
    ProgressLines,
    play_games,
    rgb_frames_problem,
    save_gif,
)

gym.register_envs(ale_py)


class FixedPolicy:
    """SB3-style ``predict``: a constant action, or a random one from ``choices``."""

    def __init__(self, action: int = 0, choices: tuple[int, ...] = (), seed: int = 0) -> None:
        self.action = action
        self.choices = choices
        self.rng = np.random.default_rng(seed)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        n_envs = len(observation)
        if self.choices:
            return self.rng.choice(self.choices, size=n_envs), None
        return np.full(n_envs, self.action), None


class RawGameRecorder(gym.Wrapper):
    """Sits below the Monitor and records what really happened in each game."""

    def __init__(self, env: gym.Env, games: list[dict[str, Any]]) -> None:
        super().__init__(env)
        self.games = games

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.game = {"reward": 0.0, "steps": 0}
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game["reward"] += float(reward)
        self.game["steps"] += 1
        if terminated or truncated:
            self.games.append({**self.game, "lives": info["lives"], "truncated": truncated})
        return obs, reward, terminated, truncated, info


@pytest.mark.parametrize("training", [False, True])
def test_breakout_scores_are_full_games_with_a_policy_that_never_fires(training: bool) -> None:
    """Even a training env (life loss terminal, penalty) yields raw full-game scores."""
    options = AtariOptions()
    games: list[list[dict[str, Any]]] = [[], []]

    def make(rank: int) -> gym.Env:
        base = gym.make("ALE/Breakout-v5", render_mode="rgb_array", **atari_make_kwargs(options))
        return wrap_atari(Monitor(RawGameRecorder(base, games[rank])), options, training=training)

    env = DummyVecEnv([lambda: make(0), lambda: make(1)])
    env.seed(3)
    never_fires = FixedPolicy(choices=(0, 2, 3))
    result = play_games(never_fires, env, n_games=3, epsilon=0.0, record_best=True)

    assert len(result.scores) == len(result.lengths) == 3
    finished = games[0][:1] + games[1][:2]  # env i plays (3 + i) // 2 of the games
    assert sorted(result.scores) == sorted(game["reward"] for game in finished)
    assert sorted(result.lengths) == sorted(game["steps"] for game in finished)
    assert all(game["lives"] == 0 and not game["truncated"] for game in finished)
    assert result.lengths.min() > 100  # five lives, not one
    assert result.truncated == 0
    assert result.best_frames is not None
    best = int(np.argmax(result.scores))
    # One frame per agent step but the last; the Monitor also counts the 5 FIREs pressed for the
    # agent inside its steps.
    assert len(result.best_frames) == result.lengths[best] - 5 - 1
    assert all(frame.shape == (210, 160, 3) for frame in result.best_frames)
    env.close()


class CountdownEnv(gym.Env):
    """Episodes of ``length`` steps, reward 1 per step; records the actions it gets."""

    def __init__(self, length: int) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(4)
        self.length = length
        self.actions: list[int] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.actions.append(int(action))
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t >= self.length, False, {}


def countdown_vec_env(*lengths: int) -> tuple[VecEnv, list[CountdownEnv]]:
    envs = [CountdownEnv(length) for length in lengths]
    vec_env = DummyVecEnv([lambda env=env: Monitor(env) for env in envs])  # type: ignore[misc]
    return vec_env, envs


def test_each_env_plays_its_share_so_short_games_do_not_dominate() -> None:
    env, _ = countdown_vec_env(2, 10)
    result = play_games(FixedPolicy(), env, n_games=4)
    assert sorted(result.scores) == [2.0, 2.0, 10.0, 10.0]
    assert sorted(result.lengths) == [2, 2, 10, 10]
    assert result.best_frames is None


def test_epsilon_greedy_on_top_of_the_greedy_action() -> None:
    env, (inner,) = countdown_vec_env(50)
    play_games(FixedPolicy(action=3), env, n_games=10)
    assert set(inner.actions) == {3}
    inner.actions.clear()
    play_games(FixedPolicy(action=3), env, n_games=10, epsilon=0.5, seed=0)
    random_share = np.mean(np.array(inner.actions) != 3)
    assert 0.3 < random_share < 0.45  # 0.5 * 3/4 of the steps take another action
    assert set(inner.actions) == {0, 1, 2, 3}


def sb3_evaluation_wrapper(env: gym.Env) -> gym.Env:
    """SB3's AtariWrapper as experiments/envs.py builds it for evaluation."""
    return AtariWrapper(env, terminal_on_life_loss=True, clip_reward=False)


def reference_evaluation_wrapper(env: gym.Env) -> gym.Env:
    return wrap_atari(env, AtariOptions(), training=False)


@pytest.mark.parametrize(
    ("wrapper", "make_kwargs"),
    [
        # SB3's wrapper skips the frames itself, so the ALE does not.
        pytest.param(sb3_evaluation_wrapper, {"frameskip": 1}, id="sb3_atari"),
        pytest.param(reference_evaluation_wrapper, atari_make_kwargs(AtariOptions()), id="atari"),
    ],
)
def test_a_policy_that_never_fires_finishes_its_games_fast(
    wrapper: Callable[[gym.Env], gym.Env], make_kwargs: dict[str, Any]
) -> None:
    """The env launches every ball (SB3: FireResetEnv on each life-loss reset), so NOOP ends games.

    Without it, each game idles until the 108k-frame cap: 108,000 Monitor steps on SB3's setup.
    """
    env = make_vec_env(
        "ALE/Breakout-v5", n_envs=1, seed=5, env_kwargs=make_kwargs, wrapper_class=wrapper
    )
    result = play_games(FixedPolicy(action=0), env, n_games=2)  # NOOP, never FIRE
    env.close()
    assert len(result.scores) == 2
    assert result.truncated == 0
    assert (result.lengths < 3000).all()  # five balls lost, each within a few hundred frames
    assert result.wall_time_s > 0


def test_truncated_games_are_counted() -> None:
    env = make_vec_env("FrozenLake-v1", n_envs=2, seed=0, env_kwargs={"is_slippery": False})
    moving_left = play_games(FixedPolicy(action=0), env, n_games=3)  # stays put: cut at 100
    assert moving_left.truncated == 3
    moving_down = play_games(FixedPolicy(action=1), env, n_games=3)  # falls into a hole
    assert moving_down.truncated == 0
    env.close()


def test_cartpole_and_frozenlake() -> None:
    cartpole = make_vec_env("CartPole-v1", n_envs=3, seed=0)
    result = play_games(FixedPolicy(action=0), cartpole, n_games=5)
    assert len(result.scores) == 5
    np.testing.assert_array_equal(result.scores, result.lengths)  # reward 1 per step
    assert result.lengths.max() < 30  # always pushing left falls fast

    frozen = make_vec_env("FrozenLake-v1", n_envs=2, seed=0, env_kwargs={"is_slippery": False})
    result = play_games(FixedPolicy(action=0), frozen, n_games=3)  # LEFT: stays at the start
    np.testing.assert_array_equal(result.scores, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(result.lengths, [100, 100, 100])  # the TimeLimit ends them


def test_rejects_envs_it_cannot_score_or_film() -> None:
    unmonitored = DummyVecEnv([lambda: CountdownEnv(3)])
    with pytest.raises(ValueError, match="Monitor"):
        play_games(FixedPolicy(), unmonitored, n_games=1)
    env, _ = countdown_vec_env(3)
    with pytest.raises(ValueError, match="rgb_array"):
        play_games(FixedPolicy(), env, n_games=1, record_best=True)
    with pytest.raises(ValueError, match="n_games"):
        play_games(FixedPolicy(), env, n_games=0)


def test_save_gif_writes_every_frame(tmp_path: Path) -> None:
    frames = [np.full((21, 16, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    path = save_gif(frames, tmp_path / "sub" / "best.gif", fps=10, scale=2)
    video = iio.imread(path, index=None)
    assert video.shape[:3] == (5, 42, 32)
    np.testing.assert_array_equal(video[3, ..., :3], np.full((42, 32, 3), 120))
    assert iio.immeta(path, index=0)["duration"] == 100


class RecordingBar:
    """Stands in for the tqdm bar: counts games reported done."""

    def __init__(self) -> None:
        self.done = 0

    def __enter__(self) -> RecordingBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: int = 1) -> None:
        self.done += n


def test_progress_advances_once_per_game_not_per_life_or_step(monkeypatch) -> None:
    monkeypatch.setattr(evaluation.sys.stdout, "isatty", lambda: True, raising=False)
    bar = RecordingBar()
    monkeypatch.setattr(evaluation, "progress_bar", lambda total, enabled: bar)
    env, _ = countdown_vec_env(3, 7)
    play_games(FixedPolicy(), env, n_games=5, progress=True)
    assert bar.done == 5


@pytest.mark.parametrize(("enabled", "tty", "shown"), [(True, True, True), (True, False, False)])
def test_progress_bar_shows_on_a_terminal_only(monkeypatch, enabled, tty, shown) -> None:
    monkeypatch.setattr(evaluation.sys.stdout, "isatty", lambda: tty, raising=False)
    with evaluation.progress_bar(3, enabled) as bar:
        assert bar.disable is not shown
    assert evaluation.progress_bar(3, enabled=False).disable


class StopAfter:
    """A predictor that raises a stop flag (as a signal handler would) after ``steps`` steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.calls = 0

    def predict(self, observation: Any, **kwargs: Any) -> tuple[np.ndarray, None]:
        self.calls += 1
        return np.zeros(len(observation), dtype=np.int64), None

    def should_stop(self) -> bool:
        return self.calls >= self.steps


def test_a_stop_during_the_games_ends_them_at_the_next_step() -> None:
    env, (inner,) = countdown_vec_env(10)
    policy = StopAfter(steps=25)  # in the third game
    with pytest.raises(EvaluationStopped) as stopped:
        play_games(policy, env, n_games=1000, should_stop=policy.should_stop)
    assert (stopped.value.games_done, stopped.value.n_games) == (2, 1000)
    assert len(inner.actions) == policy.calls == 25  # not one step more


def test_no_stop_asked_plays_every_game() -> None:
    env, _ = countdown_vec_env(3)
    result = play_games(FixedPolicy(), env, n_games=4, should_stop=lambda: False)
    assert len(result.scores) == 4


def test_progress_lines_at_most_every_interval_and_never_after_the_last_game(caplog) -> None:
    now = [0.0]
    lines = ProgressLines(total=5, label="eval at 100", interval_s=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger=evaluation.__name__):
        for seconds in (10.0, 31.0, 40.0, 70.0, 200.0):  # 5th game: the summary line says it
            now[0] = seconds
            lines.update(1)
    assert [r.getMessage() for r in caplog.records] == [
        "eval at 100: 2/5 games, 31 s",
        "eval at 100: 4/5 games, 70 s",
    ]


@pytest.mark.parametrize(("tty", "kind"), [(True, evaluation.tqdm), (False, ProgressLines)])
def test_a_bar_on_a_terminal_lines_in_a_file(monkeypatch, tty: bool, kind: type) -> None:
    monkeypatch.setattr(evaluation.sys.stdout, "isatty", lambda: tty, raising=False)
    with evaluation.progress_display(3, enabled=True, label="eval at 0") as display:
        assert isinstance(display, kind)
    assert evaluation.progress_display(3, enabled=False, label="x").disable


class CountdownPicture(CountdownEnv):
    """A CountdownEnv that renders RGB frames, or fails to the way CartPole does without pygame."""

    render_mode = "rgb_array"

    def __init__(self, length: int, renderer: bool = True) -> None:
        super().__init__(length)
        self.renderer = renderer

    def render(self) -> np.ndarray:
        if not self.renderer:
            raise gym.error.DependencyNotInstalled('pygame is not installed, run `pip install "x"`')
        return np.full((4, 4, 3), self.t, dtype=np.uint8)


def test_a_renderer_that_fails_costs_the_frames_not_the_scores() -> None:
    env = DummyVecEnv([lambda: Monitor(CountdownPicture(3, renderer=False))])
    result = play_games(FixedPolicy(), env, n_games=2, record_best=True)
    np.testing.assert_array_equal(result.scores, [3.0, 3.0])
    assert result.best_frames is None
    assert result.render_error == 'pygame is not installed, run `pip install "x"`'


def test_tracker_films_nothing_after_a_failed_frame() -> None:
    tracker = GameTracker(n_envs=1, n_games=1, record_best=True)
    assert tracker._film(DummyVecEnv([lambda: CountdownPicture(2, renderer=False)]), 0) is None
    assert not tracker.record_best and tracker.render_error is not None


def test_rgb_frames_problem_renders_one_frame_of_a_fresh_env() -> None:
    def make(renderer: bool) -> VecEnv:
        return DummyVecEnv([lambda: Monitor(CountdownPicture(3, renderer=renderer))])

    assert rgb_frames_problem(lambda: make(True)) is None
    assert (
        rgb_frames_problem(lambda: make(False)) == 'pygame is not installed, run `pip install "x"`'
    )
    no_rgb = rgb_frames_problem(lambda: countdown_vec_env(3)[0])
    assert no_rgb == "the env renders None, not RGB frames ('rgb_array')"


def test_cartpole_without_pygame_is_reported_before_any_game(monkeypatch) -> None:
    """What ``eval.gif=true`` meets on a machine without pygame, whether or not this one has it."""
    monkeypatch.setitem(sys.modules, "pygame", None)  # import pygame raises ImportError
    problem = rgb_frames_problem(lambda: make_vec_env("CartPole-v1", n_envs=1, seed=0))
    assert problem is not None and "pygame" in problem and "\n" not in problem
