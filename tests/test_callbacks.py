"""custom.callbacks: evaluation on schedule and at the end (evaluations.csv), training statistics,
and the log of every training game (games.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger

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
