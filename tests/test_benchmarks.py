"""The benchmarks through their command lines (tests never import benchmarks/): the listing,
a timing's report and JSON, stock SB3's translation of a config, and the zoo's step counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from stable_baselines3.common.utils import LinearSchedule

from custom.schedules import HoldThenLinear

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", *argv]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_listing_names_every_benchmark_with_its_question() -> None:
    listed = _run("benchmarks").stdout.splitlines()
    names = {line.split()[2] for line in listed}
    assert "benchmarks.train_step" in names and "benchmarks.harness" not in names
    assert all(line.rstrip().endswith(("?", ".")) for line in listed)


def test_a_timing_writes_its_command_ratios_and_loads_as_markdown_and_json(tmp_path: Path) -> None:
    output = tmp_path / "atari_env.md"
    result = _run(
        "benchmarks.atari_env", "--steps", "50", "--repeats", "2", "--output", str(output)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Command: `python -m benchmarks.atari_env --steps 50" in output.read_text()
    record = json.loads(output.with_suffix(".json").read_text())
    (section, *_) = record["sections"].values()
    assert len(section["load"]) == 2 and all(len(v) == 2 for v in section["values"].values())
    assert section["figures"]["ours / stock"] > 0


@pytest.mark.parametrize("total", [6_000, 2_000_000])
def test_stock_sb3_gets_the_config_values_without_our_speed_ups(total: int) -> None:
    result = _run("benchmarks.stock", "env=breakout_sb3", f"total_timesteps={total}")
    stock = json.loads(result.stdout)
    assert stock["policy_kwargs"]["optimizer_kwargs"] == {}  # no fused Adam
    assert "channels_last" not in stock["policy_kwargs"]
    # SB3's fraction-based epsilon follows run.py's step schedule (1M steps, to 0.01).
    sb3 = LinearSchedule(1.0, 0.01, stock["exploration_fraction"])
    ours = HoldThenLinear(1.0, 0.01, hold_steps=0, anneal_steps=1_000_000)
    for step in (0, 1_000, total // 2, total):
        assert sb3(1 - step / total) == pytest.approx(ours(step))


def test_stock_sb3_gets_the_class_defaults_that_run_py_fills_in_for_null_keys() -> None:
    # The schema leaves tau, gamma... null (the class's default); stock must get the numbers.
    result = _run("benchmarks.stock", "env=cartpole", "algo=dqn")
    stock = json.loads(result.stdout)
    assert stock["tau"] == 1.0 and stock["gamma"] == 0.99 and stock["max_grad_norm"] == 10


def test_stock_sb3_gets_minatars_network_as_its_features_extractor() -> None:
    hold = "dqn.exploration_hold_steps=0"
    result = _run("benchmarks.stock", "env=minatar_breakout", "dqn.loss=smooth_l1", hold)
    policy = json.loads(result.stdout)["policy_kwargs"]
    assert policy["features_extractor_class"].endswith("MinAtarCNN'>") and policy["net_arch"] == []


def test_stock_sb3_refuses_a_network_it_cannot_build() -> None:
    result = _run("benchmarks.stock", "env=cartpole", "+dqn.policy_kwargs.dueling=true")
    assert result.returncode != 0 and "stock SB3 has no dueling" in result.stderr


def test_the_zoo_env_steps_are_frames_over_4_minus_the_reset_steps_our_runs_show(
    tmp_path: Path,
) -> None:
    # Two games of 100 and 50 agent steps, each with 20 frames (5 steps) of resets.
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(
        "env: {name: breakout_sb3, id: x}\nalgo: {name: dqn}\nseed: 3\ntotal_timesteps: 150\n"
    )
    (run / "games.csv").write_text("timesteps,score,length\n100,3.0,420\n150,5.0,220\n")
    zoo = tmp_path / "0.monitor.csv"
    zoo.write_text('#{"t_start": 0}\nr,l,t\n1.0,420,1\n2.0,220,2\n9.0,820,3\n')
    png = tmp_path / "x.png"
    argv = ["benchmarks.breakout_vs_zoo", str(run), "--zoo", str(zoo), "--png", str(png)]
    result = _run(*argv, "--window", "200", "--end", "400")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "5.0 reset steps per game" in result.stdout
    # The zoo's third game ends at 350 estimated env steps (window 200-400), not 365.
    assert "| rl-zoo | env steps (estimated) | 1.50 (2) | 9.00 (1) |" in result.stdout
    assert png.is_file()
