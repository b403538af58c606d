"""Framework overhead: ``python run.py`` vs a plain SB3 script doing the same training.

    python -m benchmarks.framework_overhead [--repeats 3 [3]] [--envs cartpole breakout]
        [--logger wandb]

Both sides run as a user runs them: a subprocess each, on a terminal (a pseudo-terminal, so
that run.py's progress bar draws as it would), timed end to end. The plain script is SB3 alone
(``DQN`` on ``make_vec_env`` or ``make_atari_env``, no callbacks, no logger) with the
hyperparameters, seed and torch threads of the config that run.py composes. run.py keeps its
defaults (progress bar, checkpoints, training statistics, W&B offline with ``--logger wandb``)
except periodic evaluations, which are off (``eval.freq=0``) since the plain script has none.

Steady state: each side runs at a short and a long ``total_timesteps``, and its rate is
``(long - short) / (T_long - T_short)``, so start-up (imports, env and model construction,
W&B's start and finish) cancels out. run.py's final evaluation depends on the policy learnt,
so it does not cancel: its own wall time, from ``evaluations.csv``, is subtracted. A repeat
runs every (side, length) once, in a rotating order; the ratio of a repeat is run.py's rate
over the plain script's, and the report gives the median. Writes
docs/benchmarks/framework_overhead.md.

``python -m benchmarks.framework_overhead --plain SPEC.json`` is the plain script itself.
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
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

from benchmarks.breakout_throughput import command_args
from benchmarks.machine import cpu_name, write_report
from experiments.cli import CONF_DIR
from experiments.config import register_configs

gym.register_envs(ale_py)

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "benchmarks" / "framework_overhead.md"
TARGET = 0.95
#: run.py only: the plain script evaluates nothing while it trains.
RUN_PY_ONLY = ("eval.freq=0",)
#: ``dqn`` keys that the plain script passes to SB3's DQN as they are.
PLAIN_KEYS = (
    "buffer_size",
    "learning_starts",
    "batch_size",
    "tau",
    "gamma",
    "train_freq",
    "gradient_steps",
    "target_update_interval",
    "exploration_initial_eps",
    "exploration_final_eps",
    "max_grad_norm",
    "policy_kwargs",
)


@dataclass(frozen=True)
class Setup:
    """One env: overrides for both sides, the two lengths, and run.py's variants.

    :param variants: label -> overrides for run.py only (on top of ``shared``)
    """

    name: str
    shared: tuple[str, ...]
    short: int
    long: int
    variants: dict[str, tuple[str, ...]]


def setups(has_compile: bool) -> dict[str, Setup]:
    """CartPole as configured; Breakout (SB3's Atari setup) with a small replay and start.

    Breakout's run.py variants separate the framework from the faster update: its default
    (compiled update, frame-once replay), the eager update, and the eager update on SB3's
    replay buffer, which is the plain script's algorithm exactly. Its final evaluation plays
    one game (it is subtracted anyway).
    """
    eager = ("dqn.compile=false",) if has_compile else ()
    breakout: dict[str, tuple[str, ...]] = {"run.py (default)": ("eval.episodes=1",)}
    if has_compile:
        breakout["run.py dqn.compile=false"] = ("eval.episodes=1", *eager)
    breakout[f"run.py {' '.join((*eager, 'dqn.replay.kind=standard'))}"] = (
        "eval.episodes=1",
        *eager,
        "dqn.replay.kind=standard",
    )
    return {
        "cartpole": Setup("CartPole", ("env=cartpole", "algo=dqn"), 10_240, 30_720, {"run.py": ()}),
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
            breakout,
        ),
    }


# --- the plain script: SB3 only --------------------------------------------------------------


def plain_env(cfg: dict[str, Any]) -> VecEnv:
    """The training env as SB3 alone builds it: make_vec_env, or make_atari_env + stacking."""
    env_cfg = cfg["env"]
    if env_cfg["wrapper"] == "sb3_atari":
        env = make_atari_env(
            env_cfg["id"],
            n_envs=1,
            seed=cfg["seed"],
            wrapper_kwargs=env_cfg["wrapper_kwargs"],
            env_kwargs=env_cfg["make_kwargs"],
        )
        return VecFrameStack(env, n_stack=env_cfg["frame_stack"])
    assert env_cfg["wrapper"] == "none", f"no plain setup for wrapper {env_cfg['wrapper']}"
    return make_vec_env(
        env_cfg["id"], n_envs=1, seed=cfg["seed"], env_kwargs=env_cfg["make_kwargs"]
    )


def exploration_fraction(dqn: dict[str, Any], total_timesteps: int) -> float:
    """SB3's ``exploration_fraction`` for run.py's epsilon schedule.

    An anneal over ``exploration_anneal_steps`` env steps (held for none) is SB3's linear
    schedule over that fraction of the run, also a fraction above 1 (a run shorter than the
    anneal).
    """
    if dqn["exploration_anneal_steps"] is None:
        return dqn["exploration_fraction"]
    return dqn["exploration_anneal_steps"] / total_timesteps


def plain_train(cfg: dict[str, Any]) -> None:
    """Train SB3's DQN with the values of run.py's composed config ``cfg`` (resolved)."""
    dqn = cfg["dqn"]
    # What SB3's DQN cannot express must be at its stock value, else the work would differ.
    assert dqn["loss"] == "smooth_l1" and dqn["exploration_hold_steps"] == 0, dqn
    if cfg["torch_threads"]:
        torch.set_num_threads(cfg["torch_threads"])
    learning_rate = dqn["learning_rate"]
    if dqn["learning_rate_final"] is not None:
        learning_rate = LinearSchedule(
            learning_rate, dqn["learning_rate_final"], dqn["learning_rate_fraction"]
        )
    model = DQN(
        cfg["env"]["policy"],
        plain_env(cfg),
        learning_rate=learning_rate,
        seed=cfg["seed"],
        device=cfg["device"],
        **{key: dqn[key] for key in PLAIN_KEYS},
        exploration_fraction=exploration_fraction(dqn, cfg["total_timesteps"]),
    )
    model.learn(cfg["total_timesteps"])


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
    """One command under test and its timings: ``seconds[length][repeat]`` (net of evaluation)."""

    label: str
    overrides: tuple[str, ...]  # run.py's own; empty for the plain script
    plain: bool = False
    seconds: dict[int, list[float]] = field(default_factory=dict)
    evaluation: dict[int, list[float]] = field(default_factory=dict)

    def rates(self, short: int, long: int) -> list[float]:
        """Steady-state env steps per second of each repeat."""
        pairs = zip(self.seconds[short], self.seconds[long], strict=True)
        return [steady_rate(short, s, long, t) for s, t in pairs]


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The config run.py composes from ``overrides``."""
    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def run_side(side: Side, setup: Setup, steps: int, workdir: Path, env: dict[str, str]) -> None:
    """Run one side once at ``steps`` env steps; record its seconds net of evaluation."""
    overrides = [*setup.shared, f"total_timesteps={steps}"]
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    if side.plain:
        spec = run_dir / "plain.json"
        spec.write_text(json.dumps(OmegaConf.to_container(compose_config(overrides), resolve=True)))
        argv = [sys.executable, "-m", "benchmarks.framework_overhead", "--plain", str(spec)]
    else:
        argv = [sys.executable, "run.py", *overrides, *side.overrides, f"hydra.run.dir={run_dir}"]
    seconds, _ = run_on_terminal(argv, env)
    evaluation = final_evaluation_seconds(run_dir)
    side.seconds.setdefault(steps, []).append(seconds - evaluation)
    side.evaluation.setdefault(steps, []).append(evaluation)
    print(f"    {side.label}, {steps} steps: {seconds:.1f} s, final evaluation {evaluation:.1f} s",
          flush=True)  # fmt: skip


def measure(setup: Setup, repeats: int, env: dict[str, str], logger: str) -> list[Side]:
    """Every side at both lengths, ``repeats`` times, in a rotating order per repeat."""
    sides = [Side("plain SB3 script", (), plain=True)]
    sides += [Side(label, (*RUN_PY_ONLY, f"logger={logger}", *extra))
              for label, extra in setup.variants.items()]  # fmt: skip
    jobs = [(side, steps) for side in sides for steps in (setup.short, setup.long)]
    with tempfile.TemporaryDirectory(prefix="framework_overhead_") as workdir:
        for repeat in range(repeats):
            print(f"  repeat {repeat + 1}", flush=True)
            for side, steps in rotated(jobs, repeat * 3):
                run_side(side, setup, steps, Path(workdir), env)
    return sides


def table(setup: Setup, sides: list[Side]) -> list[str]:
    """Markdown rows: per repeat and side, the timings, rate and ratio to the plain script."""
    short, long = setup.short, setup.long
    plain = sides[0].rates(short, long)
    lines = [
        f"## {setup.name}: `{' '.join(setup.shared)}`, total_timesteps {short} and {long}",
        "",
        f"| side | repeat | T({short}) s | T({long}) s | final evaluation s (subtracted) "
        "| env steps/s | ratio to plain |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    summary = []
    for side in sides:
        rates = side.rates(short, long)
        ratios = paired_ratios(rates, plain)
        for i, rate in enumerate(rates):
            evaluation = f"{side.evaluation[short][i]:.1f} / {side.evaluation[long][i]:.1f}"
            lines.append(
                f"| {side.label} | {i + 1} | {side.seconds[short][i]:.1f} | "
                f"{side.seconds[long][i]:.1f} | {'-' if side.plain else evaluation} | "
                f"{rate:.1f} | {ratios[i]:.3f} |"
            )
        if not side.plain:
            median = statistics.median(ratios)
            verdict = "yes" if median >= TARGET else "**no**"
            summary.append(f"| {side.label} | {median:.3f} | {verdict} |")
    lines += [
        "",
        f"| run.py side | median ratio to plain | >= {TARGET} |",
        "|---|---:|:---:|",
        *summary,
    ]
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
        f"statistics, {logger}) plus `{' '.join(RUN_PY_ONLY)}`; the plain script: SB3's DQN "
        "with the same config values (policy_kwargs as they are, fused Adam included; run.py's "
        "step-based epsilon anneal as SB3's exploration_fraction), torch threads and seed, no "
        "callbacks, no progress bar",
        "- env steps/s = (long - short) / (T_long - T_short), T net of run.py's final "
        f"evaluation; repeats per env: {args.repeats}, every (side, length) once per repeat in a "
        "rotating order; ratio = run.py's rate / the plain script's in the same repeat",
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
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--plain", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain is not None:
        plain_train(json.loads(args.plain.read_text()))
        return
    load = os.getloadavg()[0]
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    has_compile = "compile" in compose_config(["algo=dqn"]).dqn
    lines = header(args, load)
    print("\n".join(lines), flush=True)
    for i, name in enumerate(args.envs):
        setup = setups(has_compile)[name]
        shared = (*setup.shared, f"torch_threads={args.threads}") if args.threads else setup.shared
        short, long = (args.short[i], args.long[i]) if args.short else (setup.short, setup.long)
        setup = Setup(setup.name, shared, short, long, setup.variants)
        print(f"{setup.name}:", flush=True)
        repeats = args.repeats[i] if len(args.repeats) > 1 else args.repeats[0]
        section = table(setup, measure(setup, repeats, env, args.logger))
        print("\n".join(section), flush=True)
        lines += ["", *section]
    write_report(args.output, lines, started)


if __name__ == "__main__":
    main()
