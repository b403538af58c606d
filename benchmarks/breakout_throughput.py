"""Breakout training throughput after learning starts: our default pipeline vs stock SB3.

    python -m benchmarks.breakout_throughput [--repeats 3] [--steps 2000] [--threads N]
        [--device auto] [--compile {true,false}]

Ours is what ``python run.py env=breakout algo=dqn`` trains, built by the code run.py uses
(Hydra compose + ``experiments.train.build``): the reference preprocessing, TargetDQN and the
frame-once replay. Stock is ``stable_baselines3.DQN("CnnPolicy")`` on SB3's ``make_atari_env``
(AtariWrapper) + ``VecFrameStack(4)`` with SB3's ReplayBuffer. Both get the same hyperparameters,
read from our composed config (learning rate, batch, gamma, gradient steps, target update
interval, gradient clipping, Adam's eps), the same buffer size, learning start, seed and torch
threads, and one fixed epsilon: a random action skips the forward pass, so acting costs depend
on epsilon.

Each side lives in its own process, as each would run for a user: ours sets what run.py sets
(flush-to-zero for float32 denormals, ``flush_denormal``), stock SB3 does not. Each model learns
in windows: a warm-up of ``--warmup`` updates (one-off costs such as a compilation stay out),
then ``--steps`` timed env steps. A repeat times one window per side, the sides in alternating
order (the other side's process waits meanwhile); the ratio of a repeat is ours / stock in env
steps per second, and the report gives the median. The gradient updates made inside each window
are counted on both sides and must be equal. After the windows each side times its parts (an
update, acting, an env step) to show where an env step's time goes. Every 2 and every 4 env
steps; writes docs/benchmarks/breakout_throughput.md.

``python -m benchmarks.breakout_throughput --worker {ours,stock} ...`` is one side's process: it
reads ``window`` / ``parts`` lines on stdin and answers each with a JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from omegaconf import DictConfig, OmegaConf
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.type_aliases import TrainFreq
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

from benchmarks.machine import cpu_name, write_report
from benchmarks.stock import stock_policy_kwargs
from experiments.config import compose_config
from experiments.train import build

gym.register_envs(ale_py)

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "breakout_throughput.md"
#: As conf/env/breakout_sb3.yaml: ALE v5 without its own frame skip, AtariWrapper skips 4.
STOCK_ENV_ID = "ALE/Breakout-v5"
STOCK_ENV_KWARGS = {"frameskip": 1}
#: Hyperparameters that stock DQN takes straight from our composed ``dqn`` block.
SHARED_KEYS = (
    "learning_rate",
    "buffer_size",
    "learning_starts",
    "batch_size",
    "gamma",
    "train_freq",
    "gradient_steps",
    "target_update_interval",
    "tau",
    "max_grad_norm",
    "policy_kwargs",
)
TRAIN_FREQS = (2, 4)
TARGET, AIM = 1.5, 2.0


class Window(BaseCallback):
    """Records wall time and gradient updates at env step ``start`` and at ``start + steps``.

    Both steps are multiples of ``train_freq``, so that the window holds exactly
    ``steps / train_freq`` updates: SB3 trains after a rollout's last callback.
    """

    def __init__(self, start: int, steps: int) -> None:
        super().__init__()
        self.start, self.end = start, start + steps
        self.times: list[float] = []
        self.updates: list[int] = []

    def _on_step(self) -> bool:
        if self.num_timesteps in (self.start, self.end):
            self.times.append(time.perf_counter())
            self.updates.append(self.model._n_updates)
        return True

    @property
    def seconds(self) -> float:
        return self.times[1] - self.times[0]

    @property
    def n_updates(self) -> int:
        return self.updates[1] - self.updates[0]


def window_start(num_timesteps: int, learning_starts: int, train_freq: int, warmup: int) -> int:
    """First timed env step: ``warmup`` updates after learning started (or after ``num_timesteps``
    for a model that already learns), rounded up to a multiple of ``train_freq``."""
    begin = max(num_timesteps, learning_starts) + warmup * train_freq
    return -(-begin // train_freq) * train_freq


@dataclass
class Model:
    """One model under test, in its worker process."""

    name: str
    model: DQN
    env: VecEnv

    def run_window(self, steps: int, warmup: int) -> dict[str, float]:
        """Learn through a warm-up and ``steps`` timed env steps; env steps/s and updates."""
        model = self.model
        assert isinstance(model.train_freq, TrainFreq)  # SB3 converts the int at set-up
        train_freq = model.train_freq.frequency
        assert steps % train_freq == 0, f"--steps must be a multiple of {train_freq}"
        start = window_start(model.num_timesteps, model.learning_starts, train_freq, warmup)
        window = Window(start, steps)
        # Learn exactly to the window's end: learn() then ends after one more (untimed) update.
        model.learn(start + steps - model.num_timesteps, callback=window, reset_num_timesteps=False)
        return {"rate": steps / window.seconds, "updates": window.n_updates}


@dataclass
class Side:
    """A side's worker process and the results of its timed windows."""

    name: str
    process: subprocess.Popen[str]
    rates: list[float] = field(default_factory=list)
    updates: list[int] = field(default_factory=list)
    compile_seconds: float | None = None

    @classmethod
    def start(cls, name: str, args: argparse.Namespace, train_freq: int) -> Side:
        argv = [sys.executable, "-m", "benchmarks.breakout_throughput", "--worker", name,
                "--train-freqs", str(train_freq), *worker_arguments(args)]  # fmt: skip
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return cls(name, process)

    def ask(self, request: str) -> dict[str, Any]:
        """Send one request line; the worker's JSON answer (its other output goes to stderr)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker ended (exit {self.process.wait()})")
        return json.loads(line)

    def run_window(self) -> None:
        result = self.ask("window")
        self.rates.append(result["rate"])
        self.updates.append(result["updates"])
        self.compile_seconds = result.get("compile_seconds")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def compose_ours(overrides: Sequence[str]) -> DictConfig:
    """The config ``python run.py env=breakout algo=dqn OVERRIDES`` gets."""
    return compose_config(["env=breakout", "algo=dqn", *overrides])


def our_overrides(args: argparse.Namespace, train_freq: int) -> list[str]:
    """Command-line overrides that set the shared values on our side."""
    overrides = [
        f"seed={args.seed}",
        f"device={args.device}",
        f"dqn.buffer_size={args.buffer_size}",
        f"dqn.learning_starts={args.learning_starts}",
        f"dqn.train_freq={train_freq}",
        f"dqn.exploration_initial_eps={args.epsilon}",
        f"dqn.exploration_final_eps={args.epsilon}",
    ]
    if args.threads:
        overrides.append(f"torch_threads={args.threads}")
    if args.compile is not None:
        overrides.append(f"dqn.compile={args.compile}")
    return overrides


def build_ours(cfg: DictConfig) -> Model:
    """Our pipeline, built as run.py builds it (the evaluation env is not needed)."""
    env, eval_env, model = build(cfg)
    eval_env.close()
    assert isinstance(model, DQN), f"env=breakout algo=dqn built a {type(model).__name__}"
    return Model("ours", model, env)


def stock_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """Stock DQN's arguments: the shared keys of our ``dqn`` block, the same fixed epsilon."""
    dqn: dict[str, Any] = OmegaConf.to_container(cfg.dqn, resolve=True)  # type: ignore[assignment]
    kwargs = {key: dqn[key] for key in SHARED_KEYS}
    kwargs["policy_kwargs"] = stock_policy_kwargs(dqn["policy_kwargs"])
    epsilon = dqn["exploration_initial_eps"]
    assert epsilon == dqn["exploration_final_eps"], "the benchmark needs one fixed epsilon"
    kwargs.update(exploration_initial_eps=epsilon, exploration_final_eps=epsilon)
    return kwargs


def build_stock(cfg: DictConfig) -> Model:
    """Stock SB3: DQN + AtariWrapper + VecFrameStack(4) + ReplayBuffer, our values."""
    env = VecFrameStack(
        make_atari_env(STOCK_ENV_ID, n_envs=1, seed=cfg.seed, env_kwargs=STOCK_ENV_KWARGS),
        n_stack=4,
    )
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)  # as run.py does on our side
    model = DQN("CnnPolicy", env, seed=cfg.seed, device=cfg.device, **stock_kwargs(cfg))
    return Model("stock", model, env)


def components(side: Model, repeats: int = 200) -> dict[str, float]:
    """Milliseconds of one gradient update, one ``predict`` and one env step, each timed alone.

    Run after the windows, on the side's own model, buffer and env: where an env step's time
    goes is ``update / train_freq + predict + env step + the rest`` (SB3's loop, storing).
    ``predict`` draws epsilon like training does, so it is the average cost of acting.
    """
    model, env = side.model, side.env
    batch_size = model.batch_size
    obs = env.reset()
    assert isinstance(obs, np.ndarray)
    actions = [env.action_space.sample() for _ in range(repeats)]

    def per_call(call: Any) -> float:
        call(0)  # warm-up
        start = time.perf_counter()
        for i in range(repeats):
            call(i)
        return 1e3 * (time.perf_counter() - start) / repeats

    def step(i: int) -> None:
        env.step(np.array([actions[i]]))

    return {
        "update": per_call(lambda _: model.train(gradient_steps=1, batch_size=batch_size)),
        "predict": per_call(lambda _: model.predict(obs)),
        "env step": per_call(step),
    }


def breakdown(
    train_freq: int, sides: Sequence[Side], parts: Sequence[dict[str, float]]
) -> list[str]:
    """Markdown: per side, an env step's milliseconds split into the timed parts and the rest."""
    lines = [
        f"Where an env step's time goes (ms; update / {train_freq} + predict + env step + rest "
        "= 1000 / median env steps per second):",
        "",
        "| side | update / train_freq | predict | env step | rest | total |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for side, part in zip(sides, parts, strict=True):
        total = 1e3 / statistics.median(side.rates)
        timed = [part["update"] / train_freq, part["predict"], part["env step"]]
        cells = " | ".join(f"{value:.2f}" for value in [*timed, total - sum(timed), total])
        lines.append(f"| {side.name} | {cells} |")
    return lines


def median_ratio(ours: Sequence[float], stock: Sequence[float]) -> tuple[list[float], float]:
    """Per-repeat ratios ours / stock (paired by repeat) and their median."""
    ratios = [a / b for a, b in zip(ours, stock, strict=True)]
    return ratios, statistics.median(ratios)


def measure(
    args: argparse.Namespace, train_freq: int
) -> tuple[tuple[Side, Side], list[dict[str, float]]]:
    """Both sides, ``repeats`` windows each, in alternating order per repeat; then the parts of
    each side's step (:func:`components`)."""
    sides = (Side.start("ours", args, train_freq), Side.start("stock", args, train_freq))
    try:
        for repeat in range(args.repeats):
            for side in sides if repeat % 2 == 0 else sides[::-1]:
                side.run_window()
                print(
                    f"  repeat {repeat + 1} {side.name}: {side.rates[-1]:.1f} env steps/s, "
                    f"{side.updates[-1]} updates",
                    flush=True,
                )
        parts = [side.ask("parts") for side in sides]
    finally:
        for side in sides:
            side.close()
    return sides, parts


def worker(args: argparse.Namespace) -> None:
    """One side's process: build it, then answer ``window`` and ``parts`` requests on stdin."""
    answer = sys.stdout
    sys.stdout = sys.stderr  # what SB3, ALE or W&B print must not mix with the answers
    (train_freq,) = args.train_freqs
    cfg = compose_ours(our_overrides(args, train_freq))
    side = build_ours(cfg) if args.worker == "ours" else build_stock(cfg)
    for request in sys.stdin:
        result: dict[str, float | None]
        if request.strip() == "window":
            result = {**side.run_window(args.steps, args.warmup)}
            result["compile_seconds"] = getattr(side.model, "compile_seconds", None)
        else:
            result = {**components(side)}
        answer.write(json.dumps(result) + "\n")
        answer.flush()
    side.env.close()


def worker_arguments(args: argparse.Namespace) -> list[str]:
    """The command-line options a worker needs to build its side as the parent was asked."""
    options = ["--steps", str(args.steps), "--warmup", str(args.warmup),
               "--buffer-size", str(args.buffer_size), "--learning-starts",
               str(args.learning_starts), "--epsilon", str(args.epsilon), "--seed", str(args.seed),
               "--device", args.device]  # fmt: skip
    if args.threads:
        options += ["--threads", str(args.threads)]
    if args.compile is not None:
        options += ["--compile", args.compile]
    return options


def section(train_freq: int, ours: Side, stock: Side, steps: int) -> list[str]:
    """Markdown section for one train_freq: per-repeat rates, update counts and ratios."""
    ratios, median = median_ratio(ours.rates, stock.rates)
    compile_seconds = ours.compile_seconds
    compiled = (
        f"compile time of ours (first compiled update, outside the windows): "
        f"{compile_seconds:.1f} s"
        if compile_seconds is not None
        else "ours reports no compile time (no compiled update)"
    )
    lines = [
        f"## Train every {train_freq} env steps ({steps} timed env steps, "
        f"{steps // train_freq} updates per window)",
        "",
        "| repeat | ours env steps/s | stock env steps/s | ours updates | stock updates | ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for i, ratio in enumerate(ratios):
        lines.append(
            f"| {i + 1} | {ours.rates[i]:.1f} | {stock.rates[i]:.1f} | {ours.updates[i]} | "
            f"{stock.updates[i]} | {ratio:.3f} |"
        )
    verdict = "yes" if median >= TARGET else "**no**"
    lines += [
        "",
        f"Median ratio ours / stock: **{median:.3f}** (target >= {TARGET}: {verdict}; "
        f"aim {AIM}). {compiled}.",
    ]
    return lines


def command_args() -> str:
    """This process's arguments as they are quoted in the report's command line."""
    return "".join(f" {arg}" for arg in sys.argv[1:])


def device_name(device: torch.device) -> str:
    """The resolved device in words, e.g. ``cpu (AMD EPYC, 2 logical cores)``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({cpu_name()}, {os.cpu_count()} logical cores)"


def header(args: argparse.Namespace, cfg: DictConfig, load: float) -> list[str]:
    """Title, exact command, machine facts and the shared hyperparameters."""
    dqn: dict[str, Any] = OmegaConf.to_container(cfg.dqn, resolve=True)  # type: ignore[assignment]
    shared = {key: dqn[key] for key in SHARED_KEYS}
    shared.pop("train_freq")
    compile_value = OmegaConf.select(cfg, "dqn.compile", default="(no such key)")
    return [
        "# Breakout training throughput: our default pipeline vs stock SB3 DQN",
        "",
        f"Command: `python -m benchmarks.breakout_throughput{command_args()}`",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- device: {device_name(get_device(args.device))}; torch threads: "
        f"{torch.get_num_threads()}; 1-min load average at start: {load:.2f}",
        f"- python {platform.python_version()}, torch {torch.__version__}, "
        f"stable-baselines3 {stable_baselines3.__version__}, ale-py {ale_py.__version__}, "
        f"{platform.platform()}",
        "- ours: `python run.py env=breakout algo=dqn` built by `experiments.train.build` "
        f"(TargetDQN, frame-once replay, reference preprocessing; dqn.compile: {compile_value}); "
        f"stock: `DQN('CnnPolicy')` on `make_atari_env('{STOCK_ENV_ID}', "
        f"env_kwargs={STOCK_ENV_KWARGS})` + `VecFrameStack(4)`, SB3's ReplayBuffer",
        f"- shared: {shared}; epsilon fixed at {args.epsilon}; seed {args.seed}; stock's "
        f"policy_kwargs: {stock_policy_kwargs(shared['policy_kwargs'])} (SB3's own Adam)",
        "- both sides: `model.learn()` with SB3's default logger and no other callback than "
        "the timer (run.py's own callbacks, logging and progress bar: "
        "docs/benchmarks/framework_overhead.md), each in its own process; ours with "
        f"flush_denormal: {OmegaConf.select(cfg, 'flush_denormal')} as run.py sets it, stock "
        "with the CPU's default",
        f"- each window: {args.warmup} untimed warm-up updates, then {args.steps} timed env "
        f"steps; {args.repeats} repeats, sides in alternating order; ratio = median over "
        "repeats of (ours / stock env steps per second in the same repeat)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2_000, help="timed env steps per window")
    parser.add_argument("--warmup", type=int, default=50, help="untimed updates per window")
    parser.add_argument("--buffer-size", type=int, default=50_000)
    parser.add_argument("--learning-starts", type=int, default=1_000)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", choices=("true", "false"), default=None,
                        help="dqn.compile on our side (default: the config's)")  # fmt: skip
    parser.add_argument("--train-freqs", type=int, nargs="+", default=list(TRAIN_FREQS))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--worker", choices=("ours", "stock"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    lines: list[str] = []
    for train_freq in args.train_freqs:
        cfg = compose_ours(our_overrides(args, train_freq))
        if not lines:
            lines = header(args, cfg, load)
            print("\n".join(lines), flush=True)
        print(f"train every {train_freq}:", flush=True)
        (ours, stock), parts = measure(args, train_freq)
        # Same work on both sides, or the ratio means nothing.
        assert ours.updates == stock.updates, f"updates differ: {ours.updates}, {stock.updates}"
        result = [
            *section(train_freq, ours, stock, args.steps),
            "",
            *breakdown(train_freq, (ours, stock), parts),
        ]
        print("\n".join(result), flush=True)
        lines += ["", *result]
    write_report(args.output, lines, started)


if __name__ == "__main__":
    main()
