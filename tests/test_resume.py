"""Resume as a user types it: one process per run dir, every algorithm, schedules in env steps.

Each test runs ``python run.py`` in a subprocess, since what is checked is what the command
line does (the run's own group choices composed first, the lock held by a live process).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.run_dir import RunDir

ROOT = Path(__file__).resolve().parent.parent
TINY = ("eval.episodes=1", "logger=none", "progress_bar=false", "checkpoint.freq=500")


def run_py(*arguments: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _one_run_dir(cwd: Path) -> Path:
    (run_dir,) = cwd.glob("outputs/*/*")
    return run_dir


def _progress(run_dir: Path, key: str) -> list[tuple[int, float]]:
    with (run_dir / "progress.csv").open() as file:
        return [
            (int(row["time/total_timesteps"]), float(row[key]))
            for row in csv.DictReader(file)
            if row.get(key) and row.get("time/total_timesteps")
        ]


def test_a_raised_budget_continues_the_learning_rate_instead_of_rewinding_it(
    tmp_path: Path,
) -> None:
    first = run_py(
        "total_timesteps=1000",
        "dqn.learning_rate=1e-3",
        "dqn.learning_rate_final=1e-4",
        "dqn.learning_rate_fraction=0.5",
        "dqn.learning_starts=100",
        "eval.freq=0",
        "log_interval=1",
        *TINY,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    run_dir = _one_run_dir(tmp_path)
    assert RunDir(run_dir).config().dqn.learning_rate_anneal_steps == 500
    again = run_py(f"resume={run_dir}", "total_timesteps=2000", "log_interval=1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    rates = _progress(run_dir, "train/learning_rate")
    after = [rate for step, rate in rates if step > 1000]
    assert after and all(rate == pytest.approx(1e-4) for rate in after)  # the floor, kept
    assert RunDir(run_dir).config().total_timesteps == 2000  # the effective config follows


def test_a_ppo_run_resumes_with_a_ppo_override(tmp_path: Path) -> None:
    first = run_py(
        "algo=ppo",
        "total_timesteps=256",
        "ppo.n_steps=64",
        "ppo.batch_size=32",
        "eval.freq=0",
        "checkpoint.freq=128",
        "logger=none",
        "progress_bar=false",
        "eval.episodes=1",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    run_dir = _one_run_dir(tmp_path)
    again = run_py(f"resume={run_dir}", "total_timesteps=512", "ppo.ent_coef=0.1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "ppo.ent_coef=0.1 (was 0.0)" in (run_dir / "run.log").read_text()
    assert RunDir(run_dir).config().ppo.ent_coef == 0.1
    status = RunDir(run_dir).status()
    assert status is not None and (status.status, status.step) == ("finished", 512)


def test_resume_refuses_a_key_that_shaped_the_run_by_name(tmp_path: Path) -> None:
    first = run_py(
        "total_timesteps=500", "dqn.learning_starts=100", "eval.freq=0", *TINY, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    run_dir = _one_run_dir(tmp_path)
    for override, key in (("env.id=Acrobot-v1", "env.id"), ("seed=3", "seed")):
        result = run_py(f"resume={run_dir}", override, "total_timesteps=900", cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip().startswith(f"error: {key}=")
        assert "cannot change when resuming" in result.stderr
        assert "Traceback" not in result.stderr
    fraction = run_py(f"resume={run_dir}", "dqn.exploration_fraction=0.5", cwd=tmp_path)
    assert "change dqn.exploration_anneal_steps" in fraction.stderr


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_resume_is_one_line_not_a_fresh_run(tmp_path: Path, value: str) -> None:
    result = run_py(f"resume={value}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: resume=")
    assert "empty" in result.stderr
    assert not (tmp_path / "outputs").exists()  # nothing left behind, not even an empty folder


def test_a_second_resume_of_the_same_dir_is_one_line_and_the_first_finishes_intact(
    tmp_path: Path,
) -> None:
    first = run_py(
        "total_timesteps=500", "dqn.learning_starts=100", "eval.freq=500", *TINY, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    run_dir = _one_run_dir(tmp_path)
    env = {**os.environ, "WANDB_MODE": "disabled"}
    longer = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), f"resume={run_dir}", "total_timesteps=6000"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while RunDir(run_dir).lock_holder() is None:  # the first resume holds the dir
            assert longer.poll() is None, longer.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        second = run_py(f"resume={run_dir}", "total_timesteps=6000", cwd=tmp_path)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"error: {run_dir}: pid {longer.pid} on {os.uname().nodename} is training in this "
            "run dir; wait for it to end or stop it (Ctrl-C or kill -TERM <pid>), then resume"
        ]
        assert longer.wait(timeout=600) == 0, longer.communicate()
    finally:
        longer.kill()
    steps = [evaluation.timesteps for evaluation in RunDir(run_dir).evaluations()]
    assert steps == sorted(steps) and steps[-1] == 6000  # one lineage, none interleaved
    assert RunDir(run_dir).is_finished()
