"""Does a resumed run's learning curve continue the interrupted one? CartPole, same seed.

One run straight through, one stopped by SIGINT after ``--stop-after`` logged steps and
resumed (``checkpoint.replay=true``); both evaluation curves are plotted beside the report.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from matplotlib.figure import Figure

from benchmarks.harness import Report, parser
from experiments.run_dir import RUN_LOG, RunDir

ROOT = Path(__file__).resolve().parents[1]
RUN = "eval.freq=1000 eval.episodes=10 checkpoint.freq=2000 checkpoint.replay=true log_interval=1"
RUN += " logger=none progress_bar=false"


def main() -> None:
    args = parser(__doc__, "../reports/resume_curve.md", total=20_000, stop_after=9_000)
    options = args.parse_args()
    report = Report("A resumed run continues the interrupted one")
    workdir = Path(tempfile.mkdtemp(prefix="valuerl_resume_curve_"))  # run.py wants new run dirs
    run = [sys.executable, "run.py", f"total_timesteps={options.total}", *RUN.split()]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    straight, stopped = RunDir(workdir / "straight"), RunDir(workdir / "stopped")
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
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    curves = [[(r.timesteps, r.mean_reward) for r in d.evaluations()] for d in (straight, stopped)]
    for curve, label in zip(curves, ("straight through", "SIGINT, then resume"), strict=True):
        axes.plot(*zip(*curve, strict=True), marker="o", markersize=3, label=label)
    axes.axvline(step, color="grey", linestyle="--", label=f"stopped at step {step}")
    axes.set(xlabel="env steps", ylabel="evaluation mean return (10 games)")
    axes.legend()
    png = options.output.with_suffix(".png")
    figure.savefig(png, dpi=100, bbox_inches="tight")
    resumed = dict(curves[1])  # by step; a step logged twice keeps its last value
    rows = [
        {"step": t, "straight through": v, "SIGINT + resume": resumed.get(t)} for t, v in curves[0]
    ]
    heading = f"CartPole, DQN, seed 0, {options.total} steps: stopped by SIGINT at step {step}"
    report.section(heading, rows, [f"![curves]({png.name})"], figures={"stopped_at": step})
    report.write(options.output)


if __name__ == "__main__":
    main()
