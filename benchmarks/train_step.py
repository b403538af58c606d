"""Cost of one ``train()`` call of each custom DQN class relative to stock SB3 DQN.

    python -m benchmarks.train_step [--repeats 31] [--threads 1] [--device cpu]

Every model samples from one shared, pre-filled replay buffer (random data: the cost of an
update does not depend on the values) and starts from the same weights. Each repeat times
``model.train(gradient_steps=N, batch_size=32)`` for every class back to back, in a rotating
order, so that slow drifts of a shared machine hit all classes alike; the ratio of a class
is the median over repeats of its time divided by stock DQN's time in the same repeat.
Two networks: Breakout's (Nature CNN on (4, 84, 84) uint8, 4 actions) and CartPole's MLP.
A last section times TargetDQN with the reference agent's Q-network (``policy_kwargs=
dict(network="reference")``, and with its loss too) against TargetDQN with SB3's Nature CNN,
paired the same way. Writes the tables to docs/benchmarks/train_step.md.
"""

import argparse
import datetime
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger

from benchmarks.machine import cpu_name, write_report
from custom.dqn import DoubleDQN, ExpectedSarsaDQN, SoftmaxDQN, TargetDQN

BATCH_SIZE = 32
BUFFER_SIZE = 2_000
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "train_step.md"
CLASSES: list[tuple[str, type[DQN], dict[str, Any]]] = [
    ("DQN (stock SB3)", DQN, {}),
    ("TargetDQN", TargetDQN, {}),
    ("DoubleDQN", DoubleDQN, {}),
    ("ExpectedSarsaDQN", ExpectedSarsaDQN, {}),
    ("SoftmaxDQN", SoftmaxDQN, {"temperature": 5e-5}),
]
REFERENCE_NET = {"policy_kwargs": {"network": "reference"}}
NETWORKS: list[tuple[str, type[DQN], dict[str, Any]]] = [
    ("TargetDQN, Nature CNN (SB3's CnnPolicy)", TargetDQN, {}),
    ('TargetDQN, network="reference"', TargetDQN, REFERENCE_NET),
    (
        'TargetDQN, network="reference", loss="reference"',
        TargetDQN,
        {**REFERENCE_NET, "loss": "reference"},
    ),
]


class ShapeEnv(gym.Env[np.ndarray, np.int64]):
    """An env that only has spaces: the benchmark never steps it."""

    def __init__(self, observation_space: gym.spaces.Box, n_actions: int) -> None:
        self.observation_space = observation_space
        self.action_space = gym.spaces.Discrete(n_actions)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.int64) -> tuple:
        return self.observation_space.sample(), 0.0, False, False, {}


@dataclass
class Setup:
    name: str
    policy: str
    observation_space: gym.spaces.Box
    n_actions: int
    gradient_steps: int
    calls: int = 1  # train() calls per timing, so that N = 1 is timed over many calls


IMAGE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
VECTOR = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
SETUPS = [
    Setup("Breakout: Nature CNN, obs (4, 84, 84) uint8, 4 actions", "CnnPolicy", IMAGE, 4, 8),
    Setup("CartPole: MLP [64, 64], obs (4,) float32, 2 actions", "MlpPolicy", VECTOR, 2, 64),
    # conf/hparams/dqn/cartpole.yaml: learn() asks for 8 gradient steps every 16 env steps
    Setup("CartPole: MLP [64, 64], as `learn()` calls it", "MlpPolicy", VECTOR, 2, 8, calls=8),
]


def filled_buffer(setup: Setup, device: str, rng: np.random.Generator) -> ReplayBuffer:
    """A full replay buffer of random transitions shaped like ``setup``'s."""
    space = setup.observation_space
    buffer = ReplayBuffer(BUFFER_SIZE, space, gym.spaces.Discrete(setup.n_actions), device=device)
    shape = (BUFFER_SIZE, 1, *space.shape)
    if space.dtype == np.uint8:
        buffer.observations[:] = rng.integers(0, 256, shape, dtype=np.uint8)
        buffer.next_observations[:] = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        buffer.observations[:] = rng.normal(size=shape)
        buffer.next_observations[:] = rng.normal(size=shape)
    buffer.actions[:] = rng.integers(0, setup.n_actions, buffer.actions.shape)
    buffer.rewards[:] = rng.normal(size=buffer.rewards.shape)
    buffer.dones[:] = rng.random(buffer.dones.shape) < 0.05
    buffer.full = True
    return buffer


def build(
    setup: Setup,
    buffer: ReplayBuffer,
    device: str,
    variants: list[tuple[str, type[DQN], dict[str, Any]]] = CLASSES,
) -> list[DQN]:
    """One model per variant, same seed (same initial weights per network), all sampling from
    ``buffer``."""
    models = []
    env = ShapeEnv(setup.observation_space, setup.n_actions)
    for _, cls, kwargs in variants:
        model = cls(setup.policy, env, buffer_size=1, seed=0, device=device, **kwargs)
        model.replay_buffer = buffer
        model.exploration_rate = 0.1  # a mid-training value for expected SARSA
        model.set_logger(Logger(folder=None, output_formats=[]))
        models.append(model)
    return models


def measure(models: list[DQN], setup: Setup, repeats: int) -> list[list[float]]:
    """Seconds per gradient step, ``times[class][repeat]``, interleaved and rotated.

    One more row at the end times a no-grad forward pass of the online network on a batch
    of next observations: the work that Double DQN adds by definition.
    """
    stock = models[0]
    steps = setup.gradient_steps * setup.calls

    def train(model: DQN) -> None:
        for _ in range(setup.calls):
            model.train(gradient_steps=setup.gradient_steps, batch_size=BATCH_SIZE)

    next_obs = stock.replay_buffer.sample(BATCH_SIZE).next_observations  # type: ignore[union-attr]

    def online_forward() -> None:
        for _ in range(steps):
            with torch.no_grad():
                stock.q_net(next_obs)

    jobs: list[Callable[[], None]] = [functools.partial(train, m) for m in models]
    jobs.append(online_forward)
    return time_jobs(jobs, steps, repeats, stock.device)


def time_jobs(
    jobs: list[Callable[[], None]], steps: int, repeats: int, device: torch.device
) -> list[list[float]]:
    """Seconds per step of each job, ``times[job][repeat]``, after one warm-up call each.

    Each repeat runs every job once, starting at a rotating position, so that slow drifts of a
    shared machine hit all jobs alike.
    """
    for job in jobs:  # warm-up: allocator, optimizer state, lazy init
        job()
    times: list[list[float]] = [[] for _ in jobs]
    for repeat in range(repeats):
        for i in [(repeat + k) % len(jobs) for k in range(len(jobs))]:
            start = time.perf_counter()
            jobs[i]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[i].append((time.perf_counter() - start) / steps)
    return times


def measure_networks(models: list[DQN], setup: Setup, repeats: int) -> list[list[float]]:
    """Seconds per gradient step of each model's ``train()``, interleaved and rotated."""

    def train(model: DQN) -> None:
        model.train(gradient_steps=setup.gradient_steps, batch_size=BATCH_SIZE)

    jobs: list[Callable[[], None]] = [functools.partial(train, m) for m in models]
    return time_jobs(jobs, setup.gradient_steps, repeats, models[0].device)


def network_table(times: list[list[float]]) -> list[str]:
    """Markdown rows: each variant against the first (Nature CNN), median of paired ratios."""
    base = times[0]
    rows = [
        "| model | ms / gradient step (median) | ratio to Nature CNN (median of paired) |",
        "|---|---:|---:|",
    ]
    for (name, _, _), own in zip(NETWORKS, times, strict=True):
        ratio = statistics.median(t / b for t, b in zip(own, base, strict=True))
        rows.append(f"| {name} | {1e3 * statistics.median(own):.3f} | {ratio:.3f} |")
    return rows


def table(times: list[list[float]]) -> list[str]:
    """Markdown rows; the last entry of ``times`` is the online forward pass."""
    stock, forward = times[0], times[-1]
    rows = [
        "| class | ms / gradient step (median) | ratio to stock (median of paired) | <= 1.05 |",
        "|---|---:|---:|:---:|",
    ]
    for (name, cls, _), own in zip(CLASSES, times, strict=False):
        ratio = statistics.median(t / s for t, s in zip(own, stock, strict=True))
        ok = "-" if own is stock else ("yes" if ratio <= 1.05 else "**no**")
        rows.append(f"| {name} | {1e3 * statistics.median(own):.3f} | {ratio:.3f} | {ok} |")
        if cls is DoubleDQN:
            # Against stock plus the forward pass that Double DQN needs by definition.
            fair = statistics.median(
                t / (s + f) for t, s, f in zip(own, stock, forward, strict=True)
            )
            ok = "yes" if fair <= 1.05 else "**no**"
            rows.append(f"| DoubleDQN vs stock + 1 online forward | | {fair:.3f} | {ok} |")
    fwd = statistics.median(forward)
    rows.append(f"| (no-grad online forward pass alone) | {1e3 * fwd:.3f} | | |")
    return rows


def network_section(setup: Setup, device: str, rng: np.random.Generator, repeats: int) -> list[str]:
    """Markdown section: the reference agent's Q-network (and loss) vs SB3's Nature CNN."""
    models = build(setup, filled_buffer(setup, device, rng), device, NETWORKS)
    lines = [
        "",
        f"## Breakout: the reference agent's Q-network vs Nature CNN: N = {setup.gradient_steps}",
        "",
        *network_table(measure_networks(models, setup, repeats)),
        "",
        'network="reference" has the Nature CNN\'s layer shapes without the three convolution '
        "biases (1,686,020 parameters vs 1,686,180) and differs in its initialisers only, so "
        "its step should cost about the same; the reference loss replaces one fused op by a few "
        "elementwise ones on a (32, 1) tensor.",
    ]
    print("\n".join(lines), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    # One thread by default: on a machine shared with other jobs, two intra-op threads on
    # two cores stall each other (measured up to 40x slower), which makes timings noise.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device
    if device.startswith("cuda"):
        device_name = torch.cuda.get_device_name(torch.device(device))
    else:
        device_name = f"{cpu_name()}, {os.cpu_count()} logical cores"

    started = time.perf_counter()
    load = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    lines = [
        "# Train-step cost: custom DQN classes vs stock SB3 DQN",
        "",
        f"Command: `python -m benchmarks.train_step{''.join(' ' + a for a in sys.argv[1:])}`",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- device: {device} ({device_name}); torch threads: {torch.get_num_threads()}; "
        f"1-min load average at start: {load:.2f}",
        f"- python {platform.python_version()}, torch {torch.__version__}, "
        f"stable-baselines3 {stable_baselines3.__version__}, {platform.platform()}",
        f"- batch size {BATCH_SIZE}; {args.repeats} interleaved repeats per class; "
        "ratio = median over repeats of (class time / stock time in the same repeat)",
        "",
        "Timed: `model.train(gradient_steps=N, batch_size=32)` on a full replay buffer of "
        "random transitions (sampling, target, loss, backward, optimizer step, logging).",
    ]
    for setup in SETUPS:
        models = build(setup, filled_buffer(setup, device, rng), device)
        times = measure(models, setup, args.repeats)
        calls = f" x {setup.calls} calls" if setup.calls > 1 else ""
        lines += ["", f"## {setup.name}: N = {setup.gradient_steps}{calls}", "", *table(times)]
        print("\n".join(lines[-len(CLASSES) - 6 :]), flush=True)
    lines += [
        "",
        "DoubleDQN does more work by definition: one extra no-grad forward pass of the online "
        "network on the next observations, to pick the argmax. Its second row divides its time "
        "by stock's plus that forward pass (timed alone, last row): that ratio is our overhead.",
    ]
    lines += network_section(SETUPS[0], device, rng, args.repeats)
    write_report(args.output, lines, started)


if __name__ == "__main__":
    main()
