"""End to end: a short run per env writes the whole run dir; W&B offline gets every key."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from experiments.algos import ALGORITHMS
from experiments.config import CONF_DIR
from experiments.train import build, train
from tests.wandb_records import history_rows, records

ROOT = Path(__file__).resolve().parent.parent
SHORT_DQN = ("dqn.learning_starts=100", "dqn.train_freq=4", "dqn.gradient_steps=1")
#: Per family, what keeps a 600-step run short on any env (small replay, short rollouts).
SHORT = {
    "dqn": (*SHORT_DQN, "dqn.buffer_size=2000"),
    "ppo": ("ppo.n_steps=64", "ppo.batch_size=64"),
}
ENVS = sorted(path.stem for path in (CONF_DIR / "env").glob("*.yaml"))
#: Every algorithm on CartPole and on Breakout (the reference env), one per family elsewhere:
#: the variants differ only in the target, which tests/test_dqn.py covers on its own.
PAIRS = sorted(
    {(env, algo) for env in ("cartpole", "breakout") for algo in ALGORITHMS}
    | {(env, algo) for env in ENVS for algo in ("dqn", "ppo")}
)


def _is_atari(cfg: DictConfig) -> bool:
    return cfg.env.wrapper in ("atari", "sb3_atari")


@pytest.mark.parametrize(("env", "algo"), PAIRS)
def test_short_training_smoke_per_env_and_algo(compose_config, tmp_path: Path, env, algo) -> None:
    overrides = (f"env={env}", f"algo={algo}", *SHORT[ALGORITHMS[algo].family])
    cfg = compose_config(
        *overrides,
        "total_timesteps=600",
        "eval.freq=300",
        "eval.episodes=1",
        "eval.n_envs=1",
        "eval.final_episodes=1",
        "logger=none",
        "progress_bar=false",
    )
    run_dir = train(cfg, run_dir=tmp_path)
    written = {p.name for p in run_dir.iterdir()}
    assert {"progress.csv", "evaluations.csv", "games.csv", "model.zip"} <= written
    model = ALGORITHMS[algo].cls.load(run_dir / "model.zip")
    assert model.num_timesteps >= 600
    with (run_dir / "evaluations.csv").open() as file:
        rows = list(csv.DictReader(file))
    timesteps = [int(row["timesteps"]) for row in rows]
    n_envs = cfg.env.n_envs  # an evaluation falls on the first batch of env steps past its step
    assert timesteps[:2] == [-(-300 // n_envs) * n_envs, -(-600 // n_envs) * n_envs]
    assert timesteps[-1] == model.num_timesteps  # and the final one, at the very end
    assert (run_dir / "best_episode.gif").is_file() == bool(cfg.eval.gif)
    assert _is_atari(cfg) or not cfg.eval.gif


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
        [sys.executable, "run.py", *arguments, "progress_bar=false"],
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
        *SHORT_DQN,
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
        *SHORT_DQN,
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


def test_a_ppo_runs_wandb_config_holds_no_dqn_keys(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_py_offline(
        "algo=ppo",
        "total_timesteps=256",
        "eval.freq=0",
        "eval.episodes=1",
        f"hydra.run.dir={run_dir}",
    )
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    configs = [
        record.run.config if record.WhichOneof("record_type") == "run" else record.config
        for record in records(run_file)
        if record.WhichOneof("record_type") in ("run", "config")
    ]
    keys = {item.key for config in configs for item in config.update}
    assert "ppo.n_steps" in keys and "algo.name" in keys
    assert not any(key.startswith(("dqn", "replay")) for key in keys)


@pytest.mark.parametrize("flush", [True, False])
def test_flush_denormal_sets_the_cpu_mode_before_the_model_is_built(
    compose_config, flush: bool
) -> None:
    try:
        env, eval_env, _ = build(compose_config(f"flush_denormal={flush}", *SHORT["dqn"]))
        env.close()
        eval_env.close()
        # Made after the build: converting 1e-39 to float32 is itself flushed when the mode is
        # on, so a tensor made before would carry an earlier test's mode.
        tiny = torch.tensor([1e-39])  # a float32 denormal: 0 once flushed
        assert bool((tiny * 0.5).item() == 0.0) is flush
    finally:
        torch.set_flush_denormal(False)  # the process default, for the tests that follow
