"""What does ``python run.py`` cost over a plain SB3 script doing the same training?

Sides, processes on a pseudo-terminal: a plain SB3 script (benchmarks/stock.py); it with our
algorithm; ``run.py``; each ``--variant``. Timed: steady env steps/s, less the final evaluation.
"""

import argparse
import contextlib
import os
import pty
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from subprocess import DEVNULL, Popen

from benchmarks.harness import Report, Side, parser, ratio_rows, run
from benchmarks.stock import stock_model
from experiments.config import compose_config
from experiments.run_dir import RunDir
from experiments.train import build

ROOT, TARGET = Path(__file__).resolve().parents[1], 0.95
BREAKOUT = "env=breakout_sb3 algo=dqn dqn.learning_starts=1000 dqn.buffer_size=20000"
SETUPS = {  # shared overrides, short and long total_timesteps, run.py's own overrides
    "cartpole": ("env=cartpole algo=dqn", 10_240, 30_720, ""),
    "breakout": (BREAKOUT, 2_000, 5_000, "eval.episodes=1"),
}
SB3, OURS = "plain SB3 script", "plain script, our algorithm"
PLAIN = {SB3: "sb3", OURS: "ours"}


def plain_train(kind: str, overrides: Sequence[str]) -> None:
    """Train what run.py's config describes without run.py: stock SB3, or our objects."""
    cfg = compose_config(overrides)
    model = stock_model(cfg) if kind == "sb3" else build(cfg)[2]  # threads set as run.py does
    model.learn(cfg.total_timesteps)


def seconds_on_terminal(argv: Sequence[str], run_dir: Path) -> float:
    """Wall seconds of ``argv`` on a pseudo-terminal, less the run's final evaluation."""
    (leader, follower), output = pty.openpty(), bytearray()

    def drain() -> None:  # a terminal nobody reads blocks its writer
        with contextlib.suppress(OSError):
            while chunk := os.read(leader, 1 << 16):
                output.extend(chunk)
                del output[: -(1 << 15)]

    threading.Thread(target=drain, daemon=True).start()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    start = time.perf_counter()
    process = Popen(argv, cwd=ROOT, env=env, stdin=DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    code, seconds = process.wait(), time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {code}:\n{output.decode()[-3000:]}")
    rows = RunDir(run_dir).evaluation_rows()
    return seconds - (float(rows[-1]["wall_time_s"]) if rows else 0.0)


def side(label: str, shared: list[str], lengths: tuple[int, int], own: tuple, folder: Path) -> Side:
    """A side whose measurement runs it at both lengths: its steady env steps per second."""

    def measure(_: None) -> float:
        seconds = []
        for steps in lengths:
            run_dir = Path(tempfile.mkdtemp(dir=folder))
            overrides = [*shared, f"total_timesteps={steps}"]
            if label in PLAIN:
                argv = ["-m", "benchmarks.framework_overhead", "--plain", PLAIN[label], *overrides]
            else:
                argv = ["run.py", *overrides, *own, f"hydra.run.dir={run_dir}"]
            seconds.append(seconds_on_terminal([sys.executable, *argv], run_dir))
        if seconds[1] <= seconds[0]:
            raise ValueError(f"{label}: the long run was not slower than the short one")
        return (lengths[1] - lengths[0]) / (seconds[1] - seconds[0])

    return Side(label, lambda: None, measure)


def main() -> None:
    args = parser(__doc__, "framework_overhead.md", repeats=[3], envs=list(SETUPS), threads=0)
    args.add_argument("--logger", choices=("wandb", "none"), default="wandb")
    args.add_argument("--short", type=int, nargs="+", help="short length per env (override)")
    args.add_argument("--long", type=int, nargs="+", help="long length per env (override)")
    args.add_argument("--variant", action="append", default=[], help="another run.py side")
    args.add_argument("--plain", nargs="+", help=argparse.SUPPRESS)
    options = args.parse_args()
    if options.plain is not None:
        return plain_train(options.plain[0], options.plain[1:])
    report = Report("Framework overhead: `python run.py` vs a plain SB3 script, steady state")
    for i, name in enumerate(options.envs):
        shared, short, long, own = SETUPS[name]
        shared += f" torch_threads={options.threads}" if options.threads else ""
        lengths = (options.short[i], options.long[i]) if options.short else (short, long)
        run_py = ("eval.freq=0", f"logger={options.logger}", *own.split())
        labels = {**{label: () for label in PLAIN}, "run.py": run_py}
        labels |= {f"run.py {v}": (*run_py, *v.split()) for v in options.variant}
        repeats = options.repeats[min(i, len(options.repeats) - 1)]
        with tempfile.TemporaryDirectory(prefix="framework_overhead_") as workdir:
            sides = [side(n, shared.split(), lengths, o, Path(workdir)) for n, o in labels.items()]
            result = run(sides, repeats, warmup=0)
        rows = ratio_rows(result, list(labels), SB3, "env steps/s", 1)
        for row in rows:
            row[f"/ {OURS} (the framework alone)"] = ours = result.ratio(row["side"], OURS)
            both = min(ours.median, row[f"/ {SB3}"].median) >= TARGET
            row[f"both >= {TARGET}"] = None if row["side"] in PLAIN else both
        heading = f"`{shared}`, total_timesteps {lengths[0]} and {lengths[1]}"
        report.section(heading, rows, [f"run.py: `{' '.join(run_py)}`"], result)
    report.write(options.output)


if __name__ == "__main__":
    main()
