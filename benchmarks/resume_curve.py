"""Does a resumed run's learning curve continue the interrupted one? CartPole, same seed.

    python -m benchmarks.resume_curve [--total 20000] [--stop-after 9000] [--out docs/reports]

Trains one run straight through and one that gets SIGINT once it has logged ``--stop-after``
steps and is then resumed (``checkpoint.replay=true``, so the replay buffer comes back too).
Plots both runs' evaluation curves into ``resume_curve.png`` and writes ``resume_curve.md``.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.kill_test import ROOT, _logged_steps


def _evaluations(run_dir: Path) -> tuple[list[int], list[float]]:
    with (run_dir / "evaluations.csv").open() as file:
        rows = list(csv.DictReader(file))
    return [int(r["timesteps"]) for r in rows], [float(r["mean_reward"]) for r in rows]


def main() -> None:
    """Train both runs, plot, and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=20_000)
    parser.add_argument("--stop-after", type=int, default=9_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/valuerl_resume_curve"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reports")
    args = parser.parse_args()
    common = [
        f"total_timesteps={args.total}",
        "eval.freq=1000",
        "eval.episodes=10",
        "checkpoint.freq=2000",
        "checkpoint.replay=true",
        "log_interval=1",
        "logger=none",
        "progress_bar=false",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    straight, stopped = args.workdir / "straight", args.workdir / "stopped"
    run = [sys.executable, "run.py", *common]
    subprocess.run([*run, f"hydra.run.dir={straight}"], cwd=ROOT, env=env, check=True)
    process = subprocess.Popen([*run, f"hydra.run.dir={stopped}"], cwd=ROOT, env=env)
    while max(_logged_steps(stopped), default=0) < args.stop_after and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    assert process.wait() == 130
    stopped_at = max(_evaluations(stopped)[0], default=0)
    resume = [sys.executable, "run.py", f"resume={stopped}", "progress_bar=false"]
    subprocess.run(resume, cwd=ROOT, env=env, check=True)
    log = (stopped / "run.log").read_text()
    step = int(log.split("from step_", 1)[1].split()[0])

    figure, axes = plt.subplots(figsize=(7, 4))
    for run_dir, label in ((straight, "straight through"), (stopped, "SIGINT, then resume")):
        steps, means = _evaluations(run_dir)
        axes.plot(steps, means, marker="o", markersize=3, label=label)
    axes.axvline(step, color="grey", linestyle="--", label=f"stopped at step {step}")
    axes.set_xlabel("env steps")
    axes.set_ylabel("evaluation mean return (10 games)")
    axes.set_title("CartPole DQN, seed 0: resumed run vs uninterrupted run")
    axes.legend()
    args.out.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out / "resume_curve.png", dpi=100, bbox_inches="tight")

    rows = ["| step | straight through | SIGINT + resume |", "|---|---|---|"]
    a_steps, a_means = _evaluations(straight)
    b = dict(zip(*_evaluations(stopped), strict=True))
    for s, m in zip(a_steps, a_means, strict=True):
        rows.append(f"| {s} | {m:.1f} | {b.get(s, float('nan')):.1f} |")
    (args.out / "resume_curve.md").write_text(
        "# A resumed run continues the interrupted one\n\n"
        f"`python -m benchmarks.resume_curve` (CartPole, DQN, seed 0, {args.total} steps, "
        "checkpoint.replay=true): one run straight through, one stopped by SIGINT at step "
        f"{step} (last evaluation before it at {stopped_at}) and resumed.\n\n"
        "![curves](resume_curve.png)\n\n" + "\n".join(rows) + "\n"
    )
    print((args.out / "resume_curve.md").read_text())


if __name__ == "__main__":
    main()
