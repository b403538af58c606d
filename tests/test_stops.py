"""End to end: SIGTERM during the final evaluation of ``python run.py`` stops it within seconds,
keeps the trained model, and a resume plays the final evaluation."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from custom.callbacks import EVALUATION_FIELDS
from experiments.errors import ConfigError
from experiments.train import build

#: The lead's patch of experiments/train.py (_learn, _resume, _envs_and_model) makes these pass.

ROOT = Path(__file__).resolve().parent.parent
#: A short CartPole run whose final evaluation would take far longer than a grace period.
SHORT_RUN = (
    "total_timesteps=200",
    "dqn.learning_starts=100",
    "dqn.train_freq=4",
    "eval.freq=0",
    "eval.final_episodes=100000",
    "checkpoint.freq=0",
    "logger=none",
    "progress_bar=false",
)


def _run_py(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "run.py", *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float) -> None:
    """Read stdout until a line holds ``text``; the process runs on meanwhile."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    for line in process.stdout:
        if text in line:
            return
        assert time.monotonic() < deadline, f"no line with {text!r} in {timeout_s} s"
    raise AssertionError(f"run.py ended without a line with {text!r}: {process.stderr.read()}")  # type: ignore[union-attr]


def _run_to_completion(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run.py", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled"},
        timeout=240,
    )


def test_sigterm_during_the_final_evaluation_keeps_the_model_and_resume_finishes(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    process = _run_py(*SHORT_RUN, f"hydra.run.dir={run_dir}")
    try:
        _wait_for_line(process, "final evaluation, 100000 games", timeout_s=240)
        time.sleep(0.5)  # well into the games
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        waited = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert waited < 10
    assert process.returncode == 143, stderr[-2000:]
    assert "training complete, model.zip written" in stderr.strip().splitlines()[-1]
    assert (run_dir / "model.zip").is_file()
    evaluations = run_dir / "evaluations.csv"
    assert evaluations.read_text().splitlines() == [",".join(EVALUATION_FIELDS)]  # no partial row

    resumed = _run_to_completion(f"resume={run_dir}", "eval.final_episodes=3")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "nothing to do" not in resumed.stdout
    with evaluations.open() as file:
        (row,) = csv.DictReader(file)
    assert (int(row["timesteps"]), int(row["episodes"])) == (200, 3)
    again = _run_to_completion(f"resume={run_dir}")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_a_gif_without_a_renderer_is_refused_before_training(compose_config, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)  # as on a machine without pygame
    with pytest.raises(ConfigError, match=r"^eval.gif=true: .*pygame.*; or use eval.gif=false$"):
        build(compose_config("env=cartpole", "eval.gif=true", "logger=none"))
