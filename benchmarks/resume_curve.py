"""Does a resumed run's learning curve continue the interrupted one? CartPole, same seed.

    python -m benchmarks.resume_curve [--total 20000] [--stop-after 9000] [--output ...]

Trains one run straight through and one that gets SIGINT once it has logged ``--stop-after``
steps and is then resumed (``checkpoint.replay=true``: the replay buffer comes back too); plots
both evaluation curves beside the report (``resume_curve.png``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.harness import DOCS, Report, parser, table
from experiments.run_dir import RUN_LOG, RunDir

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    args = parser(__doc__, "resume_curve.md")
    args.set_defaults(output=DOCS.parent / "reports" / "resume_curve.md")
    args.add_argument("--total", type=int, default=20_000)
    args.add_argument("--stop-after", type=int, default=9_000)
    args.add_argument("--workdir", type=Path, default=Path("/tmp/valuerl_resume_curve"))
    options = args.parse_args()
    report = Report("A resumed run continues the interrupted one")
    run = [
        sys.executable,
        "run.py",
        f"total_timesteps={options.total}",
        "eval.freq=1000",
        "eval.episodes=10",
        "checkpoint.freq=2000",
        "checkpoint.replay=true",
        "log_interval=1",
        "logger=none",
        "progress_bar=false",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    straight, stopped = RunDir(options.workdir / "straight"), RunDir(options.workdir / "stopped")
    subprocess.run([*run, f"hydra.run.dir={straight.path}"], cwd=ROOT, env=env, check=True)
    process = subprocess.Popen([*run, f"hydra.run.dir={stopped.path}"], cwd=ROOT, env=env)
    while max(stopped.logged_steps(), default=0) < options.stop_after and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    assert process.wait() == 130
    resume = [sys.executable, "run.py", f"resume={stopped.path}", "progress_bar=false"]
    subprocess.run(resume, cwd=ROOT, env=env, check=True)
    match = re.search(r"from step_0*(\d+)", (stopped / RUN_LOG).read_text())
    step = int(match.group(1)) if match else -1
    figure, axes = plt.subplots(figsize=(7, 4))
    for run_dir, label in ((straight, "straight through"), (stopped, "SIGINT, then resume")):
        curve = run_dir.evaluations()
        axes.plot(
            [r.timesteps for r in curve],
            [r.mean_reward for r in curve],
            marker="o",
            markersize=3,
            label=label,
        )
    axes.axvline(step, color="grey", linestyle="--", label=f"stopped at step {step}")
    axes.set(
        xlabel="env steps",
        ylabel="evaluation mean return (10 games)",
        title="CartPole DQN, seed 0: resumed run vs uninterrupted run",
    )
    axes.legend()
    options.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(options.output.with_suffix(".png"), dpi=100, bbox_inches="tight")
    resumed = {r.timesteps: r.mean_reward for r in stopped.evaluations()}
    rows = [
        [r.timesteps, f"{r.mean_reward:.1f}", f"{resumed.get(r.timesteps, float('nan')):.1f}"]
        for r in straight.evaluations()
    ]
    report.section(
        f"CartPole, DQN, seed 0, {options.total} steps: stopped by SIGINT at step {step}",
        [
            f"![curves]({options.output.with_suffix('.png').name})",
            "",
            *table(["step", "straight through", "SIGINT + resume"], rows),
        ],
        figures={"stopped_at": step, "straight": [r[1] for r in rows], "resumed": resumed},
    )
    report.write(options.output)


if __name__ == "__main__":
    main()
