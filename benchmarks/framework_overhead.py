"""Framework overhead: ``python run.py`` vs a plain SB3 script doing the same training.

    python -m benchmarks.framework_overhead [--repeats 3 [3]] [--envs cartpole breakout]
        [--logger wandb] [--variant 'progress_bar=false' ...]

Every side runs as a user runs it: a subprocess each, on a terminal (a pseudo-terminal, so
that run.py's progress bar draws as it would), timed end to end. Three sides:

- the plain SB3 script: stock SB3 alone (``DQN`` on ``make_vec_env`` or ``make_atari_env``,
  SB3's own policy and Adam, no callbacks, no logger; benchmarks/stock.py) with the
  hyperparameters, seed and torch threads of the config that run.py composes;
- the plain script with our algorithm: the env and model that run.py builds
  (``experiments.train.build``: TargetDQN, our replay, fused Adam, channels-last), then
  ``model.learn()`` with no callbacks and no logger, so that ``run.py`` against it is the cost
  of the framework alone;
- ``run.py`` with its defaults (progress bar, checkpoints, training statistics, the log of
  games, W&B offline with ``--logger wandb``) except periodic evaluations, which are off
  (``eval.freq=0``) since the plain scripts have none.

Steady state: each side runs at a short and a long ``total_timesteps``, and its rate is
``(long - short) / (T_long - T_short)``, so start-up (imports, env and model construction,
W&B's start and finish) cancels out. run.py's final evaluation depends on the policy learnt,
so it does not cancel: its own wall time, from ``evaluations.csv``, is subtracted. A repeat
runs every (side, length) once, in a rotating order; the ratio of a repeat is run.py's rate
over the plain script's, and the report gives the median. Writes
docs/benchmarks/framework_overhead.md.

``python -m benchmarks.framework_overhead --plain {sb3,ours} OVERRIDES.json`` is a plain
script itself.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import fcntl
import json
import os
import platform
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import stable_baselines3
import torch

from benchmarks.breakout_throughput import command_args
from benchmarks.machine import cpu_name, write_report
from benchmarks.stock import stock_model
from experiments.config import compose_config
from experiments.train import build

gym.register_envs(ale_py)

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "benchmarks" / "framework_overhead.md"
TARGET = 0.95
#: run.py only: the plain script evaluates nothing while it trains.
RUN_PY_ONLY = ("eval.freq=0",)


@dataclass(frozen=True)
class Setup:
    """One env: overrides for every side, the two lengths, and run.py's own overrides."""

    name: str
    shared: tuple[str, ...]
    short: int
    long: int
    run_py: tuple[str, ...]  # run.py's own overrides, on top of ``shared``


def setups() -> dict[str, Setup]:
    """CartPole as configured; Breakout (SB3's Atari setup) with a small replay and start.

    Breakout's final evaluation plays one game (it is subtracted anyway).
    """
    return {
        "cartpole": Setup("CartPole", ("env=cartpole", "algo=dqn"), 10_240, 30_720, ()),
        "breakout": Setup(
            "Breakout",
            (
                "env=breakout_sb3",
                "algo=dqn",
                "dqn.learning_starts=1000",
                "dqn.buffer_size=20000",
            ),
            2_000,
            5_000,
            ("eval.episodes=1",),
        ),
    }


# --- the plain scripts -------------------------------------------------------------------------

#: ``--plain`` kinds: what each plain script trains.
PLAIN_SIDES = {
    "sb3": "plain SB3 script",
    "ours": "plain script, our algorithm",
}


def plain_train(kind: str, overrides: Sequence[str]) -> None:
    """Train what run.py's config from ``overrides`` describes, without run.py's framework.

    :param kind: ``"sb3"``: stock SB3's DQN and env helpers; ``"ours"``: the env and model that
        run.py builds, trained with a bare ``learn()``
    """
    cfg = compose_config(overrides)
    if kind == "sb3":
        stock_model(cfg).learn(cfg.total_timesteps)
        return
    env, eval_env, model = build(cfg)  # sets torch_threads as run.py does
    eval_env.close()
    model.learn(cfg.total_timesteps)
    env.close()


# --- measuring --------------------------------------------------------------------------------


def run_on_terminal(argv: Sequence[str], env: dict[str, str]) -> tuple[float, str]:
    """Run ``argv`` with a pseudo-terminal as stdout and stderr; wall seconds and output tail.

    :raises RuntimeError: when the command fails (with the end of its output)
    """
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    output = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 1 << 16)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            output.extend(chunk)
            del output[: -(1 << 15)]

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower
    )
    os.close(follower)
    code = process.wait()
    seconds = time.perf_counter() - start
    reader.join(timeout=5)
    os.close(leader)
    tail = output.decode(errors="replace")
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {code}:\n{tail[-3000:]}")
    return seconds, tail


def final_evaluation_seconds(run_dir: Path) -> float:
    """Wall time of the last evaluation in ``run_dir/evaluations.csv`` (0 when none)."""
    path = run_dir / "evaluations.csv"
    if not path.is_file():
        return 0.0
    with path.open() as file:
        rows = list(csv.DictReader(file))
    return float(rows[-1]["wall_time_s"]) if rows else 0.0


def steady_rate(short: int, short_s: float, long: int, long_s: float) -> float:
    """Env steps per second between two run lengths: start-up and fixed costs cancel out."""
    if long_s <= short_s:
        raise ValueError(f"the long run ({long_s:.2f} s) was not slower than the short one")
    return (long - short) / (long_s - short_s)


def paired_ratios(values: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """``values[i] / baseline[i]``: each repeat against its own baseline."""
    return [v / b for v, b in zip(values, baseline, strict=True)]


def rotated(items: Sequence[Any], shift: int) -> list[Any]:
    """``items`` starting at ``shift`` (mod its length), so no job always runs first."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


@dataclass
class Side:
    """One command under test and its timings: ``seconds[length][repeat]`` (net of evaluation).

    :param plain: the ``--plain`` kind (a key of :data:`PLAIN_SIDES`); None for run.py
    """

    label: str
    overrides: tuple[str, ...] = ()  # run.py's own
    plain: str | None = None
    seconds: dict[int, list[float]] = field(default_factory=dict)
    evaluation: dict[int, list[float]] = field(default_factory=dict)

    def rates(self, short: int, long: int) -> list[float]:
        """Steady-state env steps per second of each repeat."""
        pairs = zip(self.seconds[short], self.seconds[long], strict=True)
        return [steady_rate(short, s, long, t) for s, t in pairs]


def run_side(side: Side, setup: Setup, steps: int, workdir: Path, env: dict[str, str]) -> None:
    """Run one side once at ``steps`` env steps; record its seconds net of evaluation."""
    overrides = [*setup.shared, f"total_timesteps={steps}"]
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    if side.plain is not None:
        spec = run_dir / "overrides.json"
        spec.write_text(json.dumps(overrides))
        module = "benchmarks.framework_overhead"
        argv = [sys.executable, "-m", module, "--plain", side.plain, str(spec)]
    else:
        argv = [sys.executable, "run.py", *overrides, *side.overrides, f"hydra.run.dir={run_dir}"]
    seconds, _ = run_on_terminal(argv, env)
    evaluation = final_evaluation_seconds(run_dir)
    side.seconds.setdefault(steps, []).append(seconds - evaluation)
    side.evaluation.setdefault(steps, []).append(evaluation)
    print(f"    {side.label}, {steps} steps: {seconds:.1f} s, final evaluation {evaluation:.1f} s",
          flush=True)  # fmt: skip


def measure(
    setup: Setup, repeats: int, env: dict[str, str], logger: str, variants: Sequence[str] = ()
) -> list[Side]:
    """Every side at both lengths, ``repeats`` times, in a rotating order per repeat.

    :param variants: more run.py sides, each a string of overrides (``"progress_bar=false"``)
    """
    sides = [Side(label, plain=kind) for kind, label in PLAIN_SIDES.items()]
    base = (*RUN_PY_ONLY, f"logger={logger}", *setup.run_py)
    sides.append(Side("run.py", base))
    sides += [Side(f"run.py {variant}", (*base, *variant.split())) for variant in variants]
    jobs = [(side, steps) for side in sides for steps in (setup.short, setup.long)]
    with tempfile.TemporaryDirectory(prefix="framework_overhead_") as workdir:
        for repeat in range(repeats):
            print(f"  repeat {repeat + 1}", flush=True)
            for side, steps in rotated(jobs, repeat * 3):
                run_side(side, setup, steps, Path(workdir), env)
    return sides


def table(setup: Setup, sides: list[Side]) -> list[str]:
    """Markdown rows: per repeat and side, the timings, rate and ratios to both plain scripts."""
    short, long = setup.short, setup.long
    stock, ours = (side.rates(short, long) for side in sides[:2])
    lines = [
        f"## {setup.name}: `{' '.join(setup.shared)}`, total_timesteps {short} and {long}",
        "",
        f"| side | repeat | T({short}) s | T({long}) s | final evaluation s (subtracted) "
        "| env steps/s | ratio to plain SB3 | ratio to plain, our algorithm |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side in sides:
        rates = side.rates(short, long)
        for i, rate in enumerate(rates):
            evaluation = f"{side.evaluation[short][i]:.1f} / {side.evaluation[long][i]:.1f}"
            lines.append(
                f"| {side.label} | {i + 1} | {side.seconds[short][i]:.1f} | "
                f"{side.seconds[long][i]:.1f} | {'-' if side.plain else evaluation} | "
                f"{rate:.1f} | {rate / stock[i]:.3f} | {rate / ours[i]:.3f} |"
            )
    lines += [
        "",
        "| run.py side | median ratio to the plain SB3 script | median ratio to the plain "
        f"script with our algorithm (the framework alone) | both >= {TARGET} |",
        "|---|---:|---:|:---:|",
    ]
    for side in sides[2:]:
        rates = side.rates(short, long)
        to_stock = statistics.median(paired_ratios(rates, stock))
        to_ours = statistics.median(paired_ratios(rates, ours))
        verdict = "yes" if min(to_stock, to_ours) >= TARGET else "**no**"
        lines.append(f"| {side.label} | {to_stock:.3f} | {to_ours:.3f} | {verdict} |")
    return lines


def header(args: argparse.Namespace, load: float) -> list[str]:
    """Title, exact command and machine facts."""
    logger = "W&B offline (WANDB_MODE=offline)" if args.logger == "wandb" else "logger=none"
    return [
        "# Framework overhead: `python run.py` vs a plain SB3 script, steady state",
        "",
        f"Command: `python -m benchmarks.framework_overhead{command_args()}`",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {cpu_name()}, {os.cpu_count()} logical cores, no GPU used (device=auto "
        f"resolves to {'cuda' if torch.cuda.is_available() else 'cpu'}); 1-min load average "
        f"at start: {load:.2f}",
        f"- python {platform.python_version()}, torch {torch.__version__}, "
        f"stable-baselines3 {stable_baselines3.__version__}, {platform.platform()}",
        f"- run.py: defaults (progress bar on a pseudo-terminal, checkpoints, training "
        f"statistics, log of games, {logger}) plus `{' '.join(RUN_PY_ONLY)}`; the plain SB3 "
        "script: stock SB3's DQN with the same config values (SB3's own policy and Adam, "
        "run.py's step-based epsilon anneal as SB3's exploration_fraction), torch threads and "
        "seed, no callbacks, no progress bar; the plain script with our algorithm: the env and "
        "model run.py builds, a bare `model.learn()`",
        "- env steps/s = (long - short) / (T_long - T_short), T net of run.py's final "
        f"evaluation; repeats per env: {args.repeats}, every (side, length) once per repeat in a "
        "rotating order; ratio = a side's rate / a plain script's in the same repeat",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, nargs="+", default=[3], help="per env, or one")
    parser.add_argument("--envs", nargs="+", choices=("cartpole", "breakout"),
                        default=["cartpole", "breakout"])  # fmt: skip
    parser.add_argument("--logger", choices=("wandb", "none"), default="wandb")
    parser.add_argument("--threads", type=int, help="torch_threads=N on both sides")
    parser.add_argument("--short", type=int, nargs="+", help="short length per env (override)")
    parser.add_argument("--long", type=int, nargs="+", help="long length per env (override)")
    parser.add_argument("--variant", action="append", default=[], metavar="OVERRIDES",
                        help="one more run.py side, e.g. 'progress_bar=false'")  # fmt: skip
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--plain", nargs=2, metavar=("KIND", "OVERRIDES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain is not None:
        kind, spec = args.plain
        plain_train(kind, json.loads(Path(spec).read_text()))
        return
    load = os.getloadavg()[0]
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    lines = header(args, load)
    print("\n".join(lines), flush=True)
    for i, name in enumerate(args.envs):
        setup = setups()[name]
        shared = (*setup.shared, f"torch_threads={args.threads}") if args.threads else setup.shared
        short, long = (args.short[i], args.long[i]) if args.short else (setup.short, setup.long)
        setup = Setup(setup.name, shared, short, long, setup.run_py)
        print(f"{setup.name}:", flush=True)
        repeats = args.repeats[i] if len(args.repeats) > 1 else args.repeats[0]
        section = table(setup, measure(setup, repeats, env, args.logger, args.variant))
        print("\n".join(section), flush=True)
        lines += ["", *section]
    write_report(args.output, lines, started)


if __name__ == "__main__":
    main()
