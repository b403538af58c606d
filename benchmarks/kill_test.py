"""Kill a CartPole run at a random moment, resume it, and check that nothing was lost or doubled.

    python -m benchmarks.kill_test [--runs 20] [--seed 0] [--out docs/reports/kill_test.md]

Each run starts ``run.py`` (W&B offline), waits until training has logged a random step of its
budget (for SIGKILL, one after the first checkpoint), sends SIGINT, SIGTERM or SIGKILL (in
turn), and runs ``run.py resume=RUN_DIR``. The moment is a step, not a delay, so that a faster
loop or a slower machine cannot let the run finish before the signal. Checks, per run:

- the killed process exits with 130 (SIGINT), 143 (SIGTERM) or -9 (SIGKILL);
- the resumed run exits with 0, and its ``model.zip`` has ``total_timesteps`` steps (within one
  ``train_freq``: SB3 collects whole rollouts);
- ``progress.csv`` logs no ``time/total_timesteps`` twice, ``evaluations.csv`` and ``games.csv``
  no step twice;
- both processes wrote to one W&B run id;
- after SIGKILL, the resume redid at most ``checkpoint.freq`` steps: the last step logged before
  the kill minus the step of the checkpoint resumed from (a lower bound of the steps redone, as
  rows are logged at episode ends).

Writes a table of all runs to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stable_baselines3 import DQN

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
#: Tables whose ``timesteps`` column must never repeat a step after a resume.
STEP_TABLES = ("evaluations.csv", "games.csv")
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


def _logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "progress.csv"
    if not path.is_file():
        return []
    with path.open() as file:
        rows = list(csv.DictReader(file))
    return [int(float(r["time/total_timesteps"])) for r in rows if r.get("time/total_timesteps")]


def _table_steps(run_dir: Path, name: str) -> list[int]:
    """The ``timesteps`` column of ``evaluations.csv`` or ``games.csv``."""
    with (run_dir / name).open() as file:
        return [int(row["timesteps"]) for row in csv.DictReader(file)]


def kill_and_resume(run_dir: Path, signum: int, at_step: int, seed: int = 0) -> Outcome:
    """Start a run, send ``signum`` once it has logged step ``at_step`` or later, resume it."""
    if not 0 <= at_step < TOTAL:
        raise ValueError(f"at_step must be in [0, {TOTAL}), got {at_step}")
    command = [sys.executable, "run.py", *ARGS, f"seed={seed}", f"hydra.run.dir={run_dir}"]
    log_path = run_dir.with_suffix(".log")
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while max(_logged_steps(run_dir), default=-1) < at_step and process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{run_dir}: step {at_step} not logged within 120 s")
            time.sleep(0.05)
        process.send_signal(signum)
        killed_rc = process.wait(timeout=300)
    logged_before_kill = max(_logged_steps(run_dir), default=0)
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
    match = re.search(r"from step_0*(\d+)", (run_dir / "run.log").read_text())
    resumed_from = int(match.group(1)) if match else -1
    final_steps = -1
    if (run_dir / "model.zip").is_file():
        final_steps = DQN.load(run_dir / "model.zip", device="cpu").num_timesteps
    tables = [_logged_steps(run_dir), *(_table_steps(run_dir, n) for n in STEP_TABLES)]
    duplicates = sum(len(steps) - len(set(steps)) for steps in tables)
    ids = {path.name.rsplit("-", 1)[1] for path in (run_dir / "wandb").glob("offline-run-*")}
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


def report(outcomes: list[Outcome], seconds: float) -> str:
    """The Markdown table of all runs and a one-line summary."""
    lines = [
        "# Kill test: stop a run at a random moment, resume, check",
        "",
        f"`python -m benchmarks.kill_test --runs {len(outcomes)}` on CartPole "
        f"({', '.join(ARGS)}), W&B offline, on this 2-core machine beside other jobs: "
        f"{sum(o.ok for o in outcomes)} of {len(outcomes)} runs passed every check, "
        f"in {seconds / 60:.1f} min.",
        "",
        "Checks: the killed process's exit code (130 / 143 / -9), the resume's (0), the final "
        f"model's steps (total {TOTAL}, within one train_freq = {TRAIN_FREQ}), no step twice "
        "in progress.csv (`time/total_timesteps`), evaluations.csv or games.csv, one W&B run "
        f"id, and after SIGKILL at most checkpoint.freq = {CHECKPOINT_FREQ} steps redone (last "
        "step logged before the kill minus the checkpoint's step: a lower bound, rows are "
        "logged per episode).",
        "",
        "| # | signal | signalled at step | exit | resume exit | last logged step | resumed from | "
        "redone | final steps | steps twice | W&B ids | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, o in enumerate(outcomes, 1):
        lines.append(
            f"| {index} | {o.signal} | {o.at_step} | {o.killed_rc} | {o.resumed_rc} | "
            f"{o.logged_before_kill} | {o.resumed_from} | {o.redone} | {o.final_steps} | "
            f"{o.duplicate_steps} | {o.wandb_ids} | {'yes' if o.ok else 'NO: ' + o.problem} |"
        )
    redone = [o.redone for o in outcomes if o.signal == "SIGKILL"]
    if redone:
        lines += ["", f"SIGKILL: steps redone {min(redone)} to {max(redone)}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the kill test ``--runs`` times and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random kill steps")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/valuerl_kill_test"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reports" / "kill_test.md")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    outcomes = []
    for index in range(args.runs):
        run_dir = args.workdir / f"run{index:02d}_{int(time.time())}"
        signum = signals[index % len(signals)]
        # SIGKILL before the first checkpoint leaves nothing to resume (run.py says so in one
        # line): draw its step after that checkpoint; a stop by SIGINT or SIGTERM writes one.
        first = CHECKPOINT_FREQ if signum == signal.SIGKILL else 0
        outcome = kill_and_resume(run_dir, signum, rng.randrange(first, TOTAL * 9 // 10))
        print(f"{index + 1}/{args.runs} {outcome}", flush=True)
        outcomes.append(outcome)
    text = report(outcomes, time.monotonic() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
