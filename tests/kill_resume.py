"""Kill a CartPole ``run.py`` at a given step, resume it, and say whether nothing was lost or
doubled: the slow test in tests/test_checkpoints.py and the 20-run report
(``python -m benchmarks.kill_test``) call this one function, so both judge a run alike.

Checks, per run:

- the killed process exits with 130 (SIGINT), 143 (SIGTERM) or -9 (SIGKILL);
- the resumed run exits with 0, and its ``model.zip`` has ``total_timesteps`` steps (within one
  ``train_freq``: SB3 collects whole rollouts);
- ``progress.csv`` logs no ``time/total_timesteps`` twice, ``evaluations.csv`` and ``games.csv``
  no step twice;
- both processes wrote to one W&B run id;
- after SIGKILL, the resume redid at most ``checkpoint.freq`` steps (the last step logged
  before the kill minus the checkpoint's step: a lower bound, rows are logged per episode);
  after SIGINT or SIGTERM, the stop checkpointed the step it stopped at.

The moment is a step, not a delay, so that a faster loop or a slower machine cannot let the
run finish before the signal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stable_baselines3 import DQN

from experiments.run_dir import EVALUATIONS, GAMES, RUN_LOG, RunDir

ROOT = Path(__file__).resolve().parent.parent
TOTAL = 10_000
CHECKPOINT_FREQ = 1_000
TRAIN_FREQ = 16  # conf/hparams/dqn/cartpole.yaml
#: short and cheap: fewer gradient steps than CartPole's preset, a small eval
ARGS = (
    f"total_timesteps={TOTAL}",
    f"checkpoint.freq={CHECKPOINT_FREQ}",
    "dqn.gradient_steps=2",
    "eval.freq=2500",
    "eval.episodes=2",
    "log_interval=1",
    "progress_bar=false",
)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}


@dataclass
class Outcome:
    """One kill-and-resume run: what happened and whether every check held."""

    signal: str
    at_step: int
    killed_rc: int
    resumed_rc: int
    logged_before_kill: int
    resumed_from: int
    final_steps: int
    duplicate_steps: int
    wandb_ids: int
    ok: bool
    problem: str = ""

    @property
    def redone(self) -> int:
        """Steps logged before the kill that the resume trained again (a lower bound)."""
        return max(self.logged_before_kill - self.resumed_from, 0)


def _env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def kill_and_resume(run_dir: Path, signum: int, at_step: int, seed: int = 0) -> Outcome:
    """Start a run, send ``signum`` once it has logged step ``at_step`` or later, resume it."""
    if not 0 <= at_step < TOTAL:
        raise ValueError(f"at_step must be in [0, {TOTAL}), got {at_step}")
    run = RunDir(run_dir)
    command = [sys.executable, "run.py", *ARGS, f"seed={seed}", f"hydra.run.dir={run_dir}"]
    log_path = run_dir.with_suffix(".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while max(run.logged_steps(), default=-1) < at_step and process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{run_dir}: step {at_step} not logged within 120 s")
            time.sleep(0.05)
        process.send_signal(signum)
        killed_rc = process.wait(timeout=300)
    logged_before_kill = max(run.logged_steps(), default=0)
    resumed = subprocess.run(
        [sys.executable, "run.py", f"resume={run_dir}", "progress_bar=false"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    with log_path.open("a") as log:
        log.write(resumed.stdout + resumed.stderr)
    match = re.search(r"from step_0*(\d+)", (run / RUN_LOG).read_text())
    resumed_from = int(match.group(1)) if match else -1
    final_steps = -1
    if run.model_path.is_file():
        final_steps = DQN.load(run.model_path, device="cpu").num_timesteps
    tables = [run.logged_steps()]
    tables += [[int(row["timesteps"]) for row in run.rows(name)] for name in (EVALUATIONS, GAMES)]
    duplicates = sum(len(steps) - len(set(steps)) for steps in tables)
    ids = {path.name.rsplit("-", 1)[1] for path in (run / "wandb").glob("offline-run-*")}
    problems = []
    if killed_rc != EXIT_CODES[signal.Signals(signum)]:
        problems.append(f"killed run exited {killed_rc}")
    if resumed.returncode != 0:
        problems.append(f"resume exited {resumed.returncode}")
    if not TOTAL <= final_steps < TOTAL + TRAIN_FREQ:
        problems.append(f"final model has {final_steps} steps")
    if duplicates or any(steps != sorted(steps) for steps in tables):
        problems.append("a step logged twice or out of order")
    if len(ids) != 1:
        problems.append(f"{len(ids)} W&B run ids")
    outcome = Outcome(
        signal=signal.Signals(signum).name,
        at_step=at_step,
        killed_rc=killed_rc,
        resumed_rc=resumed.returncode,
        logged_before_kill=logged_before_kill,
        resumed_from=resumed_from,
        final_steps=final_steps,
        duplicate_steps=duplicates,
        wandb_ids=len(ids),
        ok=False,
    )
    if signum == signal.SIGKILL and outcome.redone > CHECKPOINT_FREQ:
        problems.append(f"{outcome.redone} steps redone")
    if signum != signal.SIGKILL and resumed_from < logged_before_kill:
        problems.append("the stop did not checkpoint the step it stopped at")
    outcome.ok = not problems
    outcome.problem = "; ".join(problems)
    return outcome
