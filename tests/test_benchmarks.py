"""The arithmetic of the benchmarks: windows, differencing, ratios, the zoo's step counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.utils import LinearSchedule

from benchmarks.breakout_throughput import median_ratio, window_start
from benchmarks.breakout_vs_zoo import (
    Games,
    reset_steps_per_game,
    window_means,
    with_estimated_env_steps,
)
from benchmarks.framework_overhead import (
    final_evaluation_seconds,
    paired_ratios,
    rotated,
    steady_rate,
)
from benchmarks.stock import exploration_fraction, stock_policy_kwargs
from custom.schedules import HoldThenLinear


@pytest.mark.parametrize(
    ("num_timesteps", "train_freq", "expected"),
    [
        (0, 2, 1_000 + 50 * 2),  # a fresh model: warm-up updates after learning starts
        (0, 4, 1_000 + 50 * 4),
        (1_301, 4, 1_504),  # a model that learns already: from now, on a train_freq boundary
    ],
)
def test_window_start_is_warmup_updates_after_learning_starts(
    num_timesteps: int, train_freq: int, expected: int
) -> None:
    start = window_start(num_timesteps, 1_000, train_freq, warmup=50)
    assert start == expected
    assert start % train_freq == 0


def test_median_ratio_pairs_each_repeat_with_its_own_baseline() -> None:
    ratios, median = median_ratio([200.0, 90.0, 120.0], [100.0, 60.0, 40.0])
    assert ratios == [2.0, 1.5, 3.0]
    assert median == 2.0


def test_steady_rate_cancels_fixed_costs() -> None:
    # 5 s of start-up and 500 steps/s: the fixed part drops out of the difference.
    assert steady_rate(1_000, 5 + 1_000 / 500, 6_000, 5 + 6_000 / 500) == pytest.approx(500)


def test_steady_rate_refuses_a_long_run_that_was_not_slower() -> None:
    with pytest.raises(ValueError, match="not slower"):
        steady_rate(1_000, 10.0, 2_000, 9.0)


def test_paired_ratios_and_rotation() -> None:
    assert paired_ratios([1.0, 3.0], [2.0, 3.0]) == [0.5, 1.0]
    assert rotated(["a", "b", "c"], 4) == ["b", "c", "a"]


def test_final_evaluation_seconds_reads_the_last_row(tmp_path: Path) -> None:
    assert final_evaluation_seconds(tmp_path) == 0.0
    (tmp_path / "evaluations.csv").write_text(
        "timesteps,episodes,wall_time_s\n5000,10,1.5\n10000,10,2.25\n"
    )
    assert final_evaluation_seconds(tmp_path) == 2.25


@pytest.mark.parametrize("total", [6_000, 2_000_000])
def test_plain_epsilon_follows_run_py_step_schedule(total: int) -> None:
    dqn = {"exploration_anneal_steps": 1_000_000, "exploration_fraction": 0.1}
    sb3 = LinearSchedule(1.0, 0.01, exploration_fraction(dqn, total))
    ours = HoldThenLinear(1.0, 0.01, hold_steps=0, anneal_steps=1_000_000)
    for step in (0, 1_000, total // 2, total):
        assert sb3(1 - step / total) == pytest.approx(ours(step))


def test_stock_policy_kwargs_drop_our_speed_ups_only() -> None:
    ours = {
        "net_arch": [64],
        "channels_last": True,
        "dueling": False,
        "optimizer_kwargs": {"eps": 1e-8, "fused": True},
    }
    assert stock_policy_kwargs(ours) == {"net_arch": [64], "optimizer_kwargs": {"eps": 1e-8}}
    assert ours["optimizer_kwargs"] == {"eps": 1e-8, "fused": True}  # not modified


@pytest.mark.parametrize("changed", [{"dueling": True}, {"network": "reference"}])
def test_stock_policy_kwargs_refuse_a_network_stock_sb3_cannot_build(changed: dict) -> None:
    with pytest.raises(ValueError, match="stock SB3 has no"):
        stock_policy_kwargs({"net_arch": [64], **changed})


def test_the_zoo_env_steps_are_frames_over_4_minus_the_reset_steps_our_runs_show() -> None:
    # Two games of 100 and 50 agent steps, each with 20 frames (5 steps) of resets.
    ours = Games("ours", np.array([100, 150]), np.array([3.0, 5.0]), np.array([420, 220]))
    assert reset_steps_per_game([ours]) == pytest.approx(5.0)
    zoo = Games("zoo", np.zeros(0), np.array([1.0, 2.0, 9.0]), np.array([420, 220, 820]))
    estimated = with_estimated_env_steps(zoo, 5.0)
    np.testing.assert_allclose(estimated.steps, [100, 150, 350])
    # Windows by the estimate: the third game ends at 350 env steps, not 365 (frames / 4).
    edges = np.array([0, 200, 360])
    assert window_means(estimated.steps, estimated.scores, edges) == [(2, 1.5), (1, 9.0)]
    assert window_means(zoo.steps_from_lengths, zoo.scores, edges)[1] == (
        0,
        pytest.approx(np.nan, nan_ok=True),
    )
