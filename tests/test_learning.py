"""Learning checks: the shipped configs, unchanged, reach their goals (slow: minutes each).

Seeds are fixed, so these are deterministic on one machine; they fail when a change to the
configs, the envs or the algorithms stops an agent from learning.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from experiments.train import train

pytestmark = pytest.mark.slow


def final_evaluation(run_dir: Path) -> tuple[int, float]:
    """(episodes, mean score) of the last row of the run's evaluations.csv."""
    with (run_dir / "evaluations.csv").open() as file:
        last = list(csv.DictReader(file))[-1]
    return int(last["episodes"]), float(last["mean_reward"])


def test_frozenlake_dqn_reaches_a_near_optimal_success_rate(compose_config, tmp_path: Path) -> None:
    cfg = compose_config("env=frozenlake", "seed=0", "logger=none", "progress_bar=false")
    episodes, success_rate = final_evaluation(train(cfg, run_dir=tmp_path))
    assert episodes == 1000
    assert success_rate >= 0.70  # the optimal policy succeeds about 74 % of the time


def test_cartpole_dqn_defaults_end_balancing_the_pole(compose_config, tmp_path: Path) -> None:
    """``python run.py`` (seed 0, what ``make run`` trains) and seeds 1 and 2: two of the three
    end at 475 or more.

    DQN's final policy on CartPole collapses late in some seeds, and which ones depends on the
    machine's float rounding (seed 0 of the previous config ended at 500 on one CPU and 356 on
    another). conf/hparams/dqn/cartpole.yaml ends at 500 in 17 of 20 seeds: one miss in three
    is within that, two are not.
    """
    finals = []
    for seed in (0, 1, 2):
        cfg = compose_config(f"seed={seed}", "logger=none", "progress_bar=false")
        episodes, mean_score = final_evaluation(train(cfg, run_dir=tmp_path / f"seed{seed}"))
        assert episodes == 10
        finals.append(mean_score)
    assert sum(score >= 475 for score in finals) >= 2, finals  # 500 is the cap


def test_minatar_breakout_dqn_beats_a_random_policy_within_40k_steps(
    compose_config, tmp_path: Path
) -> None:
    """``python run.py env=minatar_breakout`` for 40k steps: greedy games score at least 3x a
    random policy's (or any constant action's) 0.5 per game.

    The shipped values (Dopamine's MinAtar protocol) with only the budget cut; epsilon and
    every other schedule are in env steps, so these are the first 40k steps of a full run.
    docs/minatar.md has the measured curve.
    """
    cfg = compose_config(
        "env=minatar_breakout",
        "seed=0",
        "total_timesteps=40_000",
        "eval.freq=0",
        "eval.episodes=30",
        "checkpoint.freq=0",
        "logger=none",
        "progress_bar=false",
    )
    episodes, mean_score = final_evaluation(train(cfg, run_dir=tmp_path))
    assert episodes == 30
    assert mean_score >= 1.5, mean_score
