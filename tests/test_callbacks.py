"""custom.callbacks: evaluation on schedule and at the end (evaluations.csv), training statistics,
and the log of every training game (games.csv)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from custom.callbacks import (
    EVALUATION_FIELDS,
    GAME_FIELDS,
    PeriodicEvaluation,
    ProgressBar,
    TrainingGames,
    TrainingStats,
)


class RecordingLogger(Logger):
    def __init__(self) -> None:
        super().__init__(folder=None, output_formats=[])
        self.dumped: list[tuple[int, dict]] = []

    def dump(self, step: int = 0) -> None:
        self.dumped.append((step, dict(self.name_to_value)))
        super().dump(step)


def _train(tmp_path: Path, freq: int, final_episodes: int | None) -> tuple[list, RecordingLogger]:
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = DQN("MlpPolicy", env, learning_starts=50, policy_kwargs={"net_arch": [8]}, seed=0)
    logger = RecordingLogger()
    model.set_logger(logger)
    callback = PeriodicEvaluation(
        make_vec_env("CartPole-v1", n_envs=1, seed=1),
        csv_path=tmp_path / "evaluations.csv",
        freq=freq,
        episodes=2,
        final_episodes=final_episodes,
    )
    model.learn(300, callback=callback)
    with (tmp_path / "evaluations.csv").open() as file:
        return list(csv.DictReader(file)), logger


def test_evaluates_every_freq_steps_and_once_more_at_the_end(tmp_path: Path) -> None:
    rows, logger = _train(tmp_path, freq=100, final_episodes=5)
    assert [(int(r["timesteps"]), int(r["episodes"])) for r in rows] == [
        (100, 2),
        (200, 2),
        (300, 2),
        (300, 5),
    ]
    assert list(rows[0]) == list(EVALUATION_FIELDS)
    final_scores = [float(s) for s in rows[-1]["scores"].split()]
    assert len(final_scores) == 5
    assert float(rows[-1]["mean_reward"]) == sum(final_scores) / 5
    eval_dumps = [(step, values) for step, values in logger.dumped if "eval/mean_reward" in values]
    assert [step for step, _ in eval_dumps] == [100, 200, 300, 300]
    keys = {"eval/std_reward", "eval/mean_ep_length", "eval/truncated_games", "eval/wall_time_s"}
    assert keys <= set(eval_dumps[0][1])
    final = eval_dumps[-1][1]
    assert final["eval/mean_ep_length"] == float(rows[-1]["mean_ep_length"])
    assert final["eval/wall_time_s"] > 0
    assert float(rows[-1]["wall_time_s"]) == round(final["eval/wall_time_s"], 3)
    # CartPole's 500-step limit is a truncation; an untrained net falls long before it.
    assert final["eval/truncated_games"] == int(rows[-1]["truncated"]) == 0


def test_no_duplicate_final_evaluation_when_the_last_one_matches(tmp_path: Path) -> None:
    rows, _ = _train(tmp_path, freq=150, final_episodes=None)
    assert [int(r["timesteps"]) for r in rows] == [150, 300]


def test_freq_zero_evaluates_only_at_the_end(tmp_path: Path) -> None:
    rows, _ = _train(tmp_path, freq=0, final_episodes=3)
    assert [(int(r["timesteps"]), int(r["episodes"])) for r in rows] == [(300, 3)]


def test_games_cut_by_a_time_limit_are_counted_beside_the_scores(tmp_path: Path) -> None:
    """CartPole cut at 5 steps: no pole falls that fast, so every game is a truncation."""
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = DQN("MlpPolicy", env, learning_starts=1000, policy_kwargs={"net_arch": [8]}, seed=0)
    logger = RecordingLogger()
    model.set_logger(logger)
    short_games = make_vec_env("CartPole-v1", n_envs=2, seed=1, env_kwargs={"max_episode_steps": 5})
    callback = PeriodicEvaluation(
        short_games, csv_path=tmp_path / "evaluations.csv", freq=0, episodes=3
    )
    model.learn(10, callback=callback)
    with (tmp_path / "evaluations.csv").open() as file:
        (row,) = csv.DictReader(file)
    assert (row["truncated"], row["mean_ep_length"], row["scores"]) == ("3", "5.0", "5 5 5")
    assert logger.dumped[-1][1]["eval/truncated_games"] == 3
    np.testing.assert_array_equal(callback.last_scores, [5.0, 5.0, 5.0])


def test_training_stats_log_lives_and_actions_every_freq_steps() -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = DQN("MlpPolicy", env, learning_starts=1000, policy_kwargs={"net_arch": [8]}, seed=0)
    logger = RecordingLogger()
    model.set_logger(logger)
    model.learn(400, callback=TrainingStats(freq=100))
    rows = [(step, values) for step, values in logger.dumped if "rollout/actions" in values]
    assert [step for step, _ in rows] == [100, 200, 300, 400]
    # 2 envs: 50 vec steps between rows, so 100 actions per row, all of them valid actions
    assert all(values["rollout/actions"].shape == (100,) for _, values in rows)
    assert set(np.concatenate([v["rollout/actions"] for _, v in rows])) <= {0, 1}
    # CartPole gives +1 per step: a learning episode's return equals its length
    _, last = rows[-1]
    assert last["rollout/life_rew_mean"] == last["rollout/life_len_mean"] > 0


def test_training_games_logs_every_whole_game_the_monitor_reports(tmp_path: Path) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = DQN("MlpPolicy", env, learning_starts=1000, policy_kwargs={"net_arch": [8]}, seed=0)
    path = tmp_path / "games.csv"
    model.learn(300, callback=TrainingGames(path))
    model.learn(100, callback=TrainingGames(path), reset_num_timesteps=False)  # as a resume

    with path.open() as file:
        assert next(csv.reader(file)) == list(GAME_FIELDS)  # one header, then rows only
        rows = list(csv.DictReader(file, fieldnames=GAME_FIELDS))
    monitored = [len(monitor.get_episode_rewards()) for monitor in env.envs]  # type: ignore[attr-defined]
    assert len(rows) == sum(monitored) > 10
    steps = [int(row["timesteps"]) for row in rows]
    assert steps == sorted(steps) and steps[0] > 0 and steps[-1] <= 400
    # CartPole pays +1 a step: each game's score is its length, as the Monitor counted it
    assert all(float(row["score"]) == int(row["length"]) > 0 for row in rows)
    lengths = sorted(int(row["length"]) for row in rows)
    assert lengths == sorted(
        length
        for monitor in env.envs
        for length in monitor.get_episode_lengths()  # type: ignore[attr-defined]
    )


def test_progress_bar_counts_every_step_and_redraws_at_the_rate_asked() -> None:
    model = DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), learning_starts=50,
                policy_kwargs={"net_arch": [8]}, seed=0)  # fmt: skip
    bar = ProgressBar(refresh_per_second=4.0)
    model.learn(200, callback=bar)
    assert bar.pbar.n == model.num_timesteps == 200  # 2 envs: 2 steps per call
    assert bar.pbar.mininterval == 0.25
    assert bar.pbar._prog.live.refresh_per_second == 4.0  # rich's own redraw thread
    with pytest.raises(ValueError, match="refresh_per_second"):
        ProgressBar(refresh_per_second=0)


class StopFlag:
    """``should_stop`` that turns true after ``after`` questions: a signal mid-evaluation."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked > self.after


def _learn_with_final_evaluation(
    tmp_path: Path, should_stop: StopFlag, final_episodes: int = 1000
) -> PeriodicEvaluation:
    model = DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), learning_starts=1000,
                policy_kwargs={"net_arch": [8]}, seed=0)  # fmt: skip
    model.set_logger(RecordingLogger())
    callback = PeriodicEvaluation(
        make_vec_env("CartPole-v1", n_envs=1, seed=1),
        csv_path=tmp_path / "evaluations.csv",
        freq=0,
        episodes=2,
        final_episodes=final_episodes,
        should_stop=should_stop,
    )
    model.learn(48, callback=callback)  # DQN steps by 4: 48 is a whole number of rounds
    return callback


def test_a_stop_during_the_final_evaluation_cuts_it_and_records_nothing(tmp_path, caplog) -> None:
    flag = StopFlag(after=30)  # a few CartPole games into 1000
    with caplog.at_level(logging.WARNING, logger="custom.callbacks"):
        callback = _learn_with_final_evaluation(tmp_path, flag)
    assert flag.asked == 31  # asked once per env step, stopped at the first True
    assert (tmp_path / "evaluations.csv").read_text().splitlines() == [",".join(EVALUATION_FIELDS)]
    assert callback.last_scores is None and not callback.final_done
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("eval at 48: cut after ") and message.endswith(
        " of 1000 games by a stop; not recorded"
    )


def test_a_stop_before_the_final_evaluation_skips_it(tmp_path: Path) -> None:
    callback = _learn_with_final_evaluation(tmp_path, StopFlag(after=0))
    assert len((tmp_path / "evaluations.csv").read_text().splitlines()) == 1
    assert not callback.final_done


def test_final_done_once_the_final_evaluation_is_recorded(tmp_path: Path) -> None:
    callback = _learn_with_final_evaluation(tmp_path, StopFlag(after=10**9), final_episodes=3)
    assert callback.final_done
    assert len((tmp_path / "evaluations.csv").read_text().splitlines()) == 2


class Picture(gym.Env):
    """Two-step games that render a small RGB frame, or fail as CartPole does without pygame."""

    render_mode = "rgb_array"
    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, renderer: bool) -> None:
        self.renderer = renderer
        self.t = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t >= 2, False, {}

    def render(self) -> np.ndarray:
        if not self.renderer:
            raise gym.error.DependencyNotInstalled("pygame is not installed")
        return np.full((4, 4, 3), 60 * self.t, dtype=np.uint8)


@pytest.mark.parametrize(
    ("renderer", "gif_name", "warning"),
    [
        (False, "best_episode.gif", "its frames cannot be rendered: pygame is not installed"),
        (True, "a_file/best_episode.gif", "it cannot be written: "),
    ],
)
def test_a_gif_that_cannot_be_made_is_a_warning_not_a_lost_run(
    tmp_path: Path, caplog, renderer: bool, gif_name: str, warning: str
) -> None:
    (tmp_path / "a_file").write_text("a file where the GIF's folder would go")
    model = DQN("MlpPolicy", make_vec_env(Picture, n_envs=1, env_kwargs={"renderer": True}),
                learning_starts=1000, policy_kwargs={"net_arch": [8]}, seed=0)  # fmt: skip
    model.set_logger(RecordingLogger())
    callback = PeriodicEvaluation(
        DummyVecEnv([lambda: Monitor(Picture(renderer))]),
        csv_path=tmp_path / "evaluations.csv",
        freq=10,
        episodes=2,
        gif_path=tmp_path / gif_name,
    )
    with caplog.at_level(logging.WARNING, logger="custom.callbacks"):
        model.learn(20, callback=callback)
    with (tmp_path / "evaluations.csv").open() as file:
        assert [int(row["timesteps"]) for row in csv.DictReader(file)] == [10, 20]
    (message,) = [r.getMessage() for r in caplog.records]  # once: no GIF is tried again
    assert warning in message and message.endswith("; training goes on")
    assert callback.gif_path is None and not (tmp_path / gif_name).exists()


def test_the_best_game_becomes_a_gif(tmp_path: Path) -> None:
    model = DQN("MlpPolicy", make_vec_env(Picture, n_envs=1, env_kwargs={"renderer": True}),
                learning_starts=1000, policy_kwargs={"net_arch": [8]}, seed=0)  # fmt: skip
    logger = RecordingLogger()
    model.set_logger(logger)
    callback = PeriodicEvaluation(
        DummyVecEnv([lambda: Monitor(Picture(renderer=True))]),
        csv_path=tmp_path / "evaluations.csv",
        freq=0,
        episodes=2,
        gif_path=tmp_path / "best_episode.gif",
    )
    model.learn(10, callback=callback)
    assert (tmp_path / "best_episode.gif").is_file()
    assert logger.dumped[-1][1]["eval/best_game"] == tmp_path / "best_episode.gif"
