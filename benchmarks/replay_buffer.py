"""How much memory and sampling time does FrameStackReplayBuffer cost against SB3's ReplayBuffer?

Sides: both buffers at ``--sb3-capacity``, timed: ``sample(32)`` with the tensor conversion as
``DQN.train`` sees it; then the memory of one of ``--capacity`` filled with random-play Breakout.
"""

import gc
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.atari_wrappers import AtariWrapper
from stable_baselines3.common.buffers import ReplayBuffer

from benchmarks.harness import Report, Side, parser, ratio_rows, run, timed
from custom.buffers import FrameStackReplayBuffer

N_STACK, BATCH_SIZE = 4, 32
OBS_SPACE, ACTION_SPACE = spaces.Box(0, 255, (N_STACK, 84, 84), np.uint8), spaces.Discrete(4)
SB3, FRAMES = "SB3 ReplayBuffer", "FrameStackReplayBuffer"
SB3_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def record_breakout(n_steps: int, seed: int = 0) -> list[tuple[Any, ...]]:
    """``n_steps`` of random play; per life: frames (reset frame first), actions, rewards."""
    gym.register_envs(ale_py)
    env, rng = AtariWrapper(gym.make("BreakoutNoFrameskip-v4")), np.random.default_rng(seed)
    frames, actions, rewards, lives = [env.reset(seed=seed)[0][..., 0]], [], [], []
    for _ in range(n_steps):
        actions.append(int(rng.integers(4)))
        obs, reward, terminated, truncated, _ = env.step(actions[-1])
        frames.append(obs[..., 0])
        rewards.append(reward)
        if terminated or truncated:
            lives.append((np.array(frames), np.array(actions), np.array(rewards, np.float32)))
            frames, actions, rewards = [env.reset()[0][..., 0]], [], []
    return lives


def transitions(lives: list[tuple[np.ndarray, ...]]) -> Iterator[tuple[Any, ...]]:
    """``ReplayBuffer.add`` arguments for one env, cycling through ``lives`` forever."""
    while True:
        for frames, actions, rewards in lives:
            padded = np.concatenate([frames[:1]] * (N_STACK - 1) + [frames])
            for t, action in enumerate(actions):
                done = t == len(actions) - 1
                obs, next_obs = padded[None, t : t + N_STACK], padded[None, t + 1 : t + 1 + N_STACK]
                info = [{"TimeLimit.truncated": False}]
                yield obs, next_obs, np.array([action]), rewards[t : t + 1], np.array([done]), info


def filled(
    cls: type[ReplayBuffer], size: int, stream: Iterator[tuple[Any, ...]], rows: int | None = None
) -> ReplayBuffer:
    """A ``cls`` of capacity ``size`` holding ``rows`` (all ``size`` by default) of ``stream``."""
    buffer = cls(size, OBS_SPACE, ACTION_SPACE, device="cpu")
    for _ in range(size if rows is None else rows):
        buffer.add(*next(stream))
    return buffer


def rss(key: str = "VmRSS") -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in GiB."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
    return int(line.split()[1]) / 2**20


def main() -> None:
    sizes = {"samples": 1000, "steps": 20_000, "capacity": 1_000_000, "sb3_capacity": 50_000}
    options = parser(__doc__, "replay_buffer.md", repeats=7, **sizes).parse_args()
    capacity, small = options.capacity, options.sb3_capacity
    torch.set_num_threads(1)  # sampling is numpy on one thread; so are the tensor copies, alike
    report = Report("Replay buffer: FrameStackReplayBuffer vs SB3's ReplayBuffer")
    lives = record_breakout(options.steps)
    gc.collect()
    before, start = rss(), time.perf_counter()
    big = filled(FrameStackReplayBuffer, capacity, transitions(lives))
    fill_s, grown, full_rss = time.perf_counter() - start, rss() - before, rss()
    valid = big.is_valid(np.arange(capacity), np.zeros(capacity, int)).mean()  # type: ignore[attr-defined]
    n = options.samples
    sample = timed(lambda b: [b.sample(BATCH_SIZE) for _ in range(n)], n)
    big_latency = statistics.median(sample(big) for _ in range(3))
    per_row, frames_per_row = big.nbytes / capacity, big.frames_written / capacity  # type: ignore[attr-defined]
    del big
    gc.collect()
    sides = [
        Side(SB3, lambda: filled(ReplayBuffer, small, transitions(lives)), sample),
        Side(FRAMES, lambda: filled(FrameStackReplayBuffer, small, transitions(lives)), sample),
    ]
    result = run(sides, options.repeats)
    sb3_row = sum(getattr(result.built[SB3], name).nbytes for name in SB3_ARRAYS) / small
    rows = ratio_rows(result, [FRAMES, SB3], SB3, "us", 1e6, target="<= 1.5")
    full = (f"{FRAMES}, capacity {capacity}", 1e6 * big_latency, big_latency / result.median(SB3))
    rows.append(dict(zip(rows[0], full, strict=False)))
    report.section(f"sample({BATCH_SIZE}) latency, capacity {small}", rows, result=result)
    gib = capacity / 2**30
    memory = [  # measure, ours, SB3's, target
        ("bytes per transition", per_row, sb3_row, f"SB3 / ours >= 7.8: {sb3_row / per_row:.2f}"),
        (f"array GiB at capacity {capacity}", per_row * gib, sb3_row * gib, "SB3's computed"),
        ("RSS growth while filling, GiB", grown, None, f"< 8 GB: {full_rss * 2**30 / 1e9:.2f}"),
        ("peak RSS of the run (VmHWM), GiB", rss("VmHWM"), None, None),
        ("add() per second while filling", capacity / fill_s, None, None),
        ("rows sampleable once full", float(valid), 1.0, f"frames a row {frames_per_row:.3f}"),
    ]
    steps = sum(len(actions) for _, actions, _ in lives)
    rows = [dict(zip(("measure", FRAMES, SB3, "target"), row, strict=True)) for row in memory]
    report.section(f"Memory: {steps} random-play steps ({len(lives)} lives), replayed", rows)
    report.write(options.output)


if __name__ == "__main__":
    main()
