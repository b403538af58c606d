"""End to end: a short run per env writes the whole run dir; W&B offline gets every key."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.algos import ALGORITHMS
from experiments.train import train
from tests.wandb_records import history_rows, records

ROOT = Path(__file__).resolve().parent.parent
SHORT_DQN = ("dqn.learning_starts=100", "dqn.train_freq=4", "dqn.gradient_steps=1")


ENV_EXTRAS = {
    "cartpole": (),
    "frozenlake": ("eval.final_episodes=20",),
    "breakout": (
        "dqn.buffer_size=2000",
        "eval.episodes=1",
        "eval.n_envs=1",
        "ppo.n_steps=64",
        "ppo.batch_size=64",
    ),
}


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize("env", sorted(ENV_EXTRAS))
def test_short_training_smoke_per_env_and_algo(compose_config, tmp_path: Path, env, algo) -> None:
    cfg = compose_config(
        f"env={env}",
        f"algo={algo}",
        "total_timesteps=600",
        "eval.freq=300",
        "logger=none",
        "progress_bar=false",
        *SHORT_DQN,
        *ENV_EXTRAS[env],
    )
    run_dir = train(cfg, run_dir=tmp_path)
    assert {"progress.csv", "evaluations.csv", "model.zip"} <= {p.name for p in run_dir.iterdir()}
    model = ALGORITHMS[algo].cls.load(run_dir / "model.zip")
    assert model.num_timesteps >= 600
    with (run_dir / "evaluations.csv").open() as file:
        rows = list(csv.DictReader(file))
    timesteps = [int(row["timesteps"]) for row in rows]
    assert timesteps[:2] == [300, 600]  # periodic evaluations
    assert timesteps[-1] == model.num_timesteps  # and the final one, at the very end
    assert (run_dir / "best_episode.gif").is_file() == (env == "breakout")


def test_same_seed_same_result(compose_config, tmp_path: Path) -> None:
    overrides = ("total_timesteps=400", "eval.freq=0", "logger=none", "progress_bar=false")
    first = train(compose_config(*overrides, *SHORT_DQN), run_dir=tmp_path / "a")
    again = train(compose_config(*overrides, *SHORT_DQN), run_dir=tmp_path / "b")
    assert _evaluations_but_wall_time(first) == _evaluations_but_wall_time(again)


def _evaluations_but_wall_time(run_dir: Path) -> list[dict[str, str]]:
    """evaluations.csv's rows without the one column that a seed cannot repeat."""
    with (run_dir / "evaluations.csv").open() as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        del row["wall_time_s"]
    return rows


def run_py_offline(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``python run.py ARGUMENTS`` as a user types it (flags first), W&B offline; must succeed."""
    result = subprocess.run(
        [sys.executable, "run.py", *arguments, "progress_bar=false", *SHORT_DQN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "offline"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_run_py_writes_run_dir_and_offline_wandb_run_with_sb3_keys(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_py_offline(
        "total_timesteps=1000",
        "eval.freq=500",
        "eval.episodes=2",
        "log_interval=1",
        f"hydra.run.dir={run_dir}",
    )
    for name in (".hydra/config.yaml", "progress.csv", "evaluations.csv", "model.zip"):
        assert (run_dir / name).is_file(), name
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    logged = {key for row in history_rows(run_file) for key in row}
    wanted = {"train/loss", "rollout/exploration_rate", "rollout/ep_rew_mean", "eval/mean_reward"}
    assert wanted <= logged
    progress_keys = set((run_dir / "progress.csv").read_text().splitlines()[0].split(","))
    assert wanted <= progress_keys
    assert "final evaluation:" in result.stdout


def test_multirun_gives_each_job_its_own_finished_wandb_run_in_one_group(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run_py_offline(
        "-m",
        "seed=0,1",
        "total_timesteps=300",
        "eval.freq=0",
        "eval.episodes=1",
        f"hydra.sweep.dir={sweep_dir}",
    )
    run_files = sorted(sweep_dir.glob("*/wandb/offline-run-*/run-*.wandb"))
    assert [path.parts[-4] for path in run_files] == [
        "0_cartpole_dqn_seed0",
        "1_cartpole_dqn_seed1",
    ]
    runs = [
        next(r.run for r in records(path) if r.WhichOneof("record_type") == "run")
        for path in run_files
    ]
    assert runs[0].run_id != runs[1].run_id
    assert runs[0].run_group == runs[1].run_group == f"{tmp_path.name}_sweep"
    for path in run_files:
        exits = [r.exit for r in records(path) if r.WhichOneof("record_type") == "exit"]
        assert [e.exit_code for e in exits] == [0]  # finished, once
