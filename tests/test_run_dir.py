"""experiments.run_dir: the one reader and writer of a run dir's config, results, status, lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from experiments.run_dir import NotARun, RunDir, RunDirBusy, config_differences

CONFIG = {
    "env": {"name": "cartpole", "id": "CartPole-v1"},
    "algo": {"name": "dqn"},
    "seed": 0,
    "total_timesteps": 1000,
}


def _hold_lock(path: Path) -> subprocess.Popen[str]:
    """Another process that takes the run dir's lock, says so, and waits to be killed."""
    code = textwrap.dedent(
        f"""
        import time
        from experiments.run_dir import RunDir
        RunDir({str(path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    holder = _hold_lock(tmp_path)
    try:
        with pytest.raises(RunDirBusy, match=f"pid {holder.pid} on "):
            RunDir(tmp_path).acquire()
        assert RunDir(tmp_path).lock_holder() is not None
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    holder = _hold_lock(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    run = RunDir(tmp_path)
    assert run.lock_holder() is None
    with run.locked():
        assert f"pid {os.getpid()}" in (tmp_path / ".lock").read_text()
    assert run.lock_holder() is None


def test_running_without_a_live_holder_reads_as_interrupted(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with run.locked():
        run.write_status("running", 500, 1000)
        status = run.status()
        assert status is not None and status.status == "running"
    status = run.status()
    assert status is not None and status.status == "interrupted"
    assert "killed" in status.detail and status.step == 500


def test_finished_needs_the_status_and_the_model(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_config(OmegaConf.create(CONFIG))
    run.write_status("finished", 1000, 1000)
    assert not run.is_finished()  # no model.zip
    run.model_path.write_bytes(b"")
    assert run.is_finished()
    run.write_status("interrupted", 600, 1000, detail="SIGTERM")
    assert not run.is_finished()


def test_runs_without_a_status_fall_back_to_their_evaluations(tmp_path: Path) -> None:
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(CONFIG), tmp_path / ".hydra" / "config.yaml")
    (tmp_path / "model.zip").write_bytes(b"")
    run = RunDir(tmp_path)
    run.evaluations_path.write_text("timesteps,mean_reward\n500,1.5\n1000,2.5\n")
    assert run.is_finished()
    assert run.final_mean() == 2.5
    assert [e.timesteps for e in run.evaluations()] == [500, 1000]
    run.evaluations_path.write_text("timesteps,mean_reward\n500,1.5\n")
    assert not run.is_finished()


def test_the_effective_config_wins_over_hydras_record(tmp_path: Path) -> None:
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(
        OmegaConf.create({**CONFIG, "total_timesteps": 5}), tmp_path / ".hydra/config.yaml"
    )
    run = RunDir(tmp_path)
    assert run.config().total_timesteps == 5
    run.write_config(OmegaConf.create(CONFIG))
    assert run.config().total_timesteps == 1000


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(NotARun, match="not a run dir"):
        RunDir(tmp_path).config()
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(NotARun, match=r"has no env\.name"):
        RunDir(tmp_path).config()
    assert RunDir(tmp_path / "absent").status() is None


def test_a_broken_config_file_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("a: [\n")  # truncated YAML: a yaml error, no ValueError
    with pytest.raises(NotARun, match="unreadable"):
        RunDir(tmp_path).config()


def test_config_differences_name_every_changed_leaf() -> None:
    old = OmegaConf.create(
        {"dqn": {"learning_rate": 0.0023, "gamma": 0.99}, "seed": 0, "resume": None}
    )
    new = OmegaConf.create(
        {"dqn": {"learning_rate": 0.01, "gamma": 0.99}, "seed": 0, "resume": "x"}
    )
    assert config_differences(old, new, ignore=("resume",)) == {"dqn.learning_rate": (0.0023, 0.01)}


def test_status_records_its_writer(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    before = time.time()
    run.write_status("failed", 10, 1000, detail="RuntimeError: boom")
    status = run.status()
    assert status is not None
    assert (status.status, status.pid, status.detail) == (
        "failed",
        os.getpid(),
        "RuntimeError: boom",
    )
    assert status.time >= before


def test_csv_rows_and_logged_steps_read_any_of_the_runs_tables(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.rows("games.csv") == [] and run.logged_steps() == []
    (tmp_path / "games.csv").write_text("timesteps,score,length\n120,3.0,400\n")
    (tmp_path / "progress.csv").write_text(
        "time/total_timesteps,train/loss\n64,\n,0.5\n128.0,0.4\n"
    )
    assert run.rows("games.csv") == [{"timesteps": "120", "score": "3.0", "length": "400"}]
    assert run.logged_steps() == [64, 128]
    with pytest.raises(ValueError, match="not one of"):
        run.rows("config.yaml")
