"""What prioritized replay costs: a Breakout train step, the sum tree at 1M, memory per row.

    python -m benchmarks.prioritized_replay [--repeats 31]

Three questions of issue 26, in one run, each against the uniform replay it replaces:

1. A Breakout train step (sample, update, priority write-back): ``TargetDQN.train`` on the
   frame-once memory with prioritisation vs without, same weights, same batches sizes, real
   Breakout frames; interleaved, rotated repeats (``benchmarks.train_step.time_jobs``), the
   ratio is the median of the ratios paired per repeat.
2. Sampling 32 from a 1M-transition tree plus the priority update: the sum-tree part alone
   (stratified draw, search, update) and the whole ``sample`` + ``update_priorities`` of a
   1M-row prioritized buffer, beside SB3's uniform ``sample`` of the same buffer shape.
3. Bytes per transition of the frame-once memory with priorities at 1M rows, tree included,
   from the arrays' sizes (``np.zeros`` reserves, it does not touch), and one RSS measurement
   of a filled smaller buffer, scaled.

Writes docs/benchmarks/prioritized_replay.md and, beside it, the figures as JSON.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger

from benchmarks.breakout_throughput import median_ratio
from benchmarks.machine import cpu_name, write_report
from benchmarks.replay_buffer import (
    ACTION_SPACE,
    OBS_SPACE,
    Episode,
    fill,
    proc_status_bytes,
    record_breakout,
    transitions,
)
from benchmarks.train_step import ShapeEnv, time_jobs
from custom.buffers import FrameStackReplayBuffer
from custom.dqn import TargetDQN
from custom.prioritized import PrioritizedFrameStackReplayBuffer, PrioritizedReplayBuffer
from custom.sum_tree import SumTree

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "prioritized_replay.md"
BATCH_SIZE = 32
GRADIENT_STEPS = 8  # per timed train() call, as benchmarks/train_step.py's Breakout setup
TRAIN_ROWS = 20_000  # filled rows of the train-step buffers (capacity 1M: the tree's depth)
BIG = 1_000_000
RSS_ROWS = 100_000
SAMPLES = 200  # sample + update pairs per timed job of question 2
VECTOR = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)  # CartPole's: a small observation
#: The issue's goals: train-step ratio, microseconds at 1M, bytes per transition at 1M.
GOALS = {"train_step_ratio": 1.05, "tree_us": 200.0, "bytes_per_transition": 7250.0}


def train_step(episodes: list[Episode], repeats: int) -> dict[str, Any]:
    """Question 1: seconds per gradient step with uniform and prioritized frame replay."""
    buffers: list[FrameStackReplayBuffer] = []
    for cls in (FrameStackReplayBuffer, PrioritizedFrameStackReplayBuffer):
        buffer = cls(BIG, OBS_SPACE, ACTION_SPACE, device="cpu")
        fill(buffer, transitions(episodes), TRAIN_ROWS)
        buffers.append(buffer)
    models = []
    for buffer in buffers:
        model = TargetDQN("CnnPolicy", ShapeEnv(OBS_SPACE, 4), buffer_size=1, seed=0, device="cpu")
        model.replay_buffer = buffer
        model.set_logger(Logger(folder=None, output_formats=[]))
        models.append(model)

    def job(model: TargetDQN) -> Callable[[], None]:
        return lambda: model.train(gradient_steps=GRADIENT_STEPS, batch_size=BATCH_SIZE)

    uniform, prioritized = time_jobs(
        [job(m) for m in models], GRADIENT_STEPS, repeats, torch.device("cpu")
    )
    ratios, ratio = median_ratio(prioritized, uniform)
    quartiles = statistics.quantiles(ratios, n=4)
    return {
        "uniform_ms": 1e3 * statistics.median(uniform),
        "prioritized_ms": 1e3 * statistics.median(prioritized),
        "ratio": ratio,
        "ratio_quartiles": [quartiles[0], quartiles[2]],
    }


def tree_and_sample(repeats: int) -> dict[str, Any]:
    """Question 2: microseconds per sample(32) + priority update at 1M transitions."""
    rng = np.random.default_rng(0)
    priorities = rng.uniform(0.01, 10.0, BIG)
    tree = SumTree(BIG)
    tree.update(np.arange(BIG), priorities**0.6)
    prioritized = PrioritizedReplayBuffer(BIG, VECTOR, ACTION_SPACE, device="cpu")
    stock = ReplayBuffer(BIG, VECTOR, ACTION_SPACE, device="cpu")
    for buffer in (prioritized, stock):
        buffer.observations[:] = rng.normal(size=buffer.observations.shape)
        buffer.next_observations[:] = rng.normal(size=buffer.next_observations.shape)
        buffer.full = True
    prioritized.update_priorities(np.arange(BIG), priorities)
    td_errors = rng.uniform(0.01, 10.0, BATCH_SIZE)
    strata = np.arange(BATCH_SIZE)

    def tree_part() -> None:
        # what sample and update_priorities do with the tree
        for _ in range(SAMPLES):
            u = (strata + np.random.random_sample(BATCH_SIZE)) * (tree.total / BATCH_SIZE)  # noqa: NPY002
            tree.update(tree.find(u), td_errors**0.6)

    def whole() -> None:
        for _ in range(SAMPLES):
            prioritized.update_priorities(prioritized.sample(BATCH_SIZE).indices, td_errors)

    def uniform() -> None:
        for _ in range(SAMPLES):
            stock.sample(BATCH_SIZE)

    times = time_jobs([tree_part, whole, uniform], SAMPLES, repeats, torch.device("cpu"))
    tree_us, whole_us, uniform_us = (1e6 * statistics.median(t) for t in times)
    return {
        "tree_us": tree_us,
        "prioritized_sample_and_update_us": whole_us,
        "uniform_sample_us": uniform_us,
        "tree_levels": len(tree.levels),
    }


def memory(episodes: list[Episode]) -> dict[str, Any]:
    """Question 3: bytes per transition at 1M from array sizes, and RSS of a filled buffer."""
    big = PrioritizedFrameStackReplayBuffer(BIG, OBS_SPACE, ACTION_SPACE, device="cpu")
    stock = ReplayBuffer(1000, OBS_SPACE, ACTION_SPACE, device="cpu")
    sb3_arrays = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    sb3_bytes = sum(getattr(stock, name).nbytes for name in sb3_arrays) / stock.buffer_size
    figures = {
        "bytes_per_transition": big.nbytes / BIG,
        "tree_bytes_per_transition": big.tree.nbytes / BIG,
        "sb3_bytes_per_transition": sb3_bytes,
    }
    del big, stock
    gc.collect()
    rss_before = proc_status_bytes("VmRSS")
    filled = PrioritizedFrameStackReplayBuffer(RSS_ROWS, OBS_SPACE, ACTION_SPACE, device="cpu")
    fill(filled, transitions(episodes), RSS_ROWS)
    figures["rss_bytes_per_transition"] = (proc_status_bytes("VmRSS") - rss_before) / RSS_ROWS
    return figures


def report(figures: dict[str, Any], args: argparse.Namespace, loads: list[float]) -> list[str]:
    """The markdown lines of the report."""
    step, tree, mem = figures["train_step"], figures["sample_1m"], figures["memory"]
    argv = sys.argv[1:]

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**no**"

    return [
        "# Prioritized replay: what it costs against uniform replay",
        "",
        f"Command: `python -m benchmarks.prioritized_replay{''.join(' ' + a for a in argv)}`",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- device: cpu ({cpu_name()}, {os.cpu_count()} logical cores); torch threads: "
        f"{torch.get_num_threads()}; 1-min load average: {loads[0]:.2f} at start, "
        f"{loads[1]:.2f} at the end (a machine shared with other jobs)",
        f"- python {platform.python_version()}, numpy {np.__version__}, torch "
        f"{torch.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
        f"{platform.platform()}",
        f"- {args.repeats} interleaved, rotated repeats; ratio = median over repeats of "
        "(prioritized time / uniform time in the same repeat)",
        "",
        "| question | uniform | prioritized | goal | met |",
        "|---|---:|---:|---|:---:|",
        f"| Breakout train step, ms per gradient step (ratio {step['ratio']:.3f}, quartiles "
        f"{step['ratio_quartiles'][0]:.3f} to {step['ratio_quartiles'][1]:.3f}) "
        f"| {step['uniform_ms']:.2f} | {step['prioritized_ms']:.2f} "
        f"| ratio <= {GOALS['train_step_ratio']} "
        f"| {verdict(step['ratio'] <= GOALS['train_step_ratio'])} |",
        f"| sum tree at 1M: draw 32 + search + update, us | | {tree['tree_us']:.0f} "
        f"| < {GOALS['tree_us']:.0f} us | {verdict(tree['tree_us'] < GOALS['tree_us'])} |",
        f"| 1M-row buffer: `sample(32)` (+ `update_priorities`), us "
        f"| {tree['uniform_sample_us']:.0f} | {tree['prioritized_sample_and_update_us']:.0f} "
        "| (context) | |",
        f"| bytes per transition at 1M rows (frames; tree included) "
        f"| {mem['sb3_bytes_per_transition']:,.0f} (SB3) | {mem['bytes_per_transition']:,.0f} "
        f"| <= {GOALS['bytes_per_transition']:,.0f} "
        f"| {verdict(mem['bytes_per_transition'] <= GOALS['bytes_per_transition'])} |",
        "",
        f"1. Train step: `TargetDQN.train(gradient_steps={GRADIENT_STEPS}, batch_size="
        f"{BATCH_SIZE})`, SB3's Nature CNN, one torch thread, on the frame-once memory "
        f"(capacity {BIG:,}, {TRAIN_ROWS:,} rows of real random-play Breakout frames) without "
        "and with prioritisation (`PrioritizedFrameStackReplayBuffer`: stratified draw from the "
        "sum tree, importance weights in the loss, |TD error| written back after each step).",
        f"2. Sum tree: {BIG:,} leaves in {tree['tree_levels']} levels (fanout 32, top level "
        "searched at once); one job is "
        f"{SAMPLES} rounds of what `sample` and `update_priorities` do with it. The buffer row "
        f"times the whole public path on a {BIG:,}-row `PrioritizedReplayBuffer` with CartPole's "
        "observation (so the tree, weights and bookkeeping dominate) beside SB3's uniform "
        "`ReplayBuffer.sample` of the same buffer: the difference is what prioritisation adds "
        "per batch.",
        f"3. Memory: array sizes of a {BIG:,}-row `PrioritizedFrameStackReplayBuffer` "
        f"(frames with 1 % headroom, frame references, actions, rewards, flags, and the tree: "
        f"{mem['tree_bytes_per_transition']:.2f} B per transition); SB3's `ReplayBuffer` "
        "stores `obs` and `next_obs` in full. RSS growth while filling "
        f"{RSS_ROWS:,} rows with real frames: {mem['rss_bytes_per_transition']:,.0f} B per "
        "transition (the first rows of a smaller ring; the arrays' figure is the bound).",
        "",
        "What it does to learning, CartPole seeds 0-4 against uniform 1-step replay: "
        "[docs/reports/prioritized_cartpole.md](../reports/prioritized_cartpole.md).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    # One thread: on a shared machine two intra-op threads stall each other (train_step.py).
    torch.set_num_threads(1)
    np.random.seed(0)  # noqa: NPY002 - the buffers draw from numpy's global stream, as SB3's
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    episodes = record_breakout(3000)
    figures: dict[str, Any] = {
        "train_step": train_step(episodes, args.repeats),
        "sample_1m": tree_and_sample(args.repeats),
        "memory": memory(episodes),
    }
    loads = [load_start, os.getloadavg()[0]]
    figures["load_average"] = loads
    print(json.dumps(figures, indent=2), flush=True)
    write_report(args.output, report(figures, args, loads), started)
    args.output.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
