"""Memory and sampling speed of FrameStackReplayBuffer against SB3's ReplayBuffer.

    python -m benchmarks.replay_buffer            # 1M-capacity fill (about 7 GB), a few minutes
    python -m benchmarks.replay_buffer --quick    # 100k capacity, under a minute

Frames are real Breakout frames (SB3's AtariWrapper: 84x84 grey, life loss ends an episode)
from a random policy, replayed in a loop; an episode starts with its first frame repeated 4
times, as custom/atari_wrappers.py does. Writes docs/benchmarks/replay_buffer.md.
"""

from __future__ import annotations

import argparse
import bz2
import gc
import lzma
import os
import platform
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import ale_py
import gymnasium as gym
import numpy as np
import stable_baselines3
import torch as th
from gymnasium import spaces
from stable_baselines3.common.atari_wrappers import AtariWrapper
from stable_baselines3.common.buffers import ReplayBuffer

from custom.buffers import FrameStackReplayBuffer

N_STACK = 4
OBS_SPACE = spaces.Box(0, 255, (N_STACK, 84, 84), dtype=np.uint8)
ACTION_SPACE = spaces.Discrete(4)
BATCH_SIZE = 32


@dataclass
class Episode:
    """Frames of one life (reset frame first, terminal frame last) and the agent's choices."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    truncated: bool


def record_breakout(n_steps: int, seed: int = 0) -> list[Episode]:
    """Play ``n_steps`` random Breakout steps with SB3's AtariWrapper; one Episode per life."""
    gym.register_envs(ale_py)
    env = AtariWrapper(gym.make("BreakoutNoFrameskip-v4"))
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    frames, actions, rewards, episodes = [obs[..., 0]], [], [], []
    for _ in range(n_steps):
        action = int(rng.integers(4))
        obs, reward, terminated, truncated, _ = env.step(action)
        frames.append(obs[..., 0])
        actions.append(action)
        rewards.append(reward)
        if terminated or truncated:
            episodes.append(
                Episode(np.array(frames), np.array(actions), np.array(rewards), truncated)
            )
            obs, _ = env.reset()
            frames, actions, rewards = [obs[..., 0]], [], []
    env.close()
    return episodes


def transitions(episodes: list[Episode]) -> Iterator[tuple]:
    """``ReplayBuffer.add`` arguments for one env, cycling through ``episodes`` forever."""
    while True:
        for episode in episodes:
            # Stacks are windows of the frames after N_STACK - 1 copies of the first one.
            padded = np.concatenate([episode.frames[:1]] * (N_STACK - 1) + [episode.frames])
            last = len(episode.actions) - 1
            for t, action in enumerate(episode.actions):
                done = t == last
                info = {"TimeLimit.truncated": done and episode.truncated}
                yield (
                    padded[None, t : t + N_STACK],
                    padded[None, t + 1 : t + 1 + N_STACK],
                    np.array([action]),
                    np.array([episode.rewards[t]], dtype=np.float32),
                    np.array([done]),
                    [info],
                )


def fill(buffer: ReplayBuffer, stream: Iterator[tuple], n: int) -> float:
    """Add ``n`` transitions; return the seconds it took."""
    start = time.perf_counter()
    for _ in range(n):
        buffer.add(*next(stream))
    return time.perf_counter() - start


def proc_status_bytes(key: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def sample_seconds(buffer: ReplayBuffer, n_samples: int) -> float:
    """Mean seconds of one ``sample(BATCH_SIZE)`` call (tensor conversion included)."""
    start = time.perf_counter()
    for _ in range(n_samples):
        buffer.sample(BATCH_SIZE)
    return (time.perf_counter() - start) / n_samples


def compare_latency(
    buffers: dict[str, ReplayBuffer], n_samples: int, rounds: int
) -> dict[str, float]:
    """Median over interleaved rounds, so that load from other processes hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in buffers}
    for _ in range(rounds):
        for name, buffer in buffers.items():
            times[name].append(sample_seconds(buffer, n_samples))
    return {name: float(np.median(t)) for name, t in times.items()}


def compression_study(frames: np.ndarray, sb3_latency: float) -> list[list[str]]:
    """Per-frame compression with the standard library's codecs, on real frames."""
    codecs: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
        "zlib level 1": (lambda b: zlib.compress(b, 1), zlib.decompress),
        "zlib level 6": (lambda b: zlib.compress(b, 6), zlib.decompress),
        "lzma preset 0": (lambda b: lzma.compress(b, preset=0), lzma.decompress),
        "bz2 level 1": (lambda b: bz2.compress(b, 1), bz2.decompress),
    }
    frame_bytes = frames[0].nbytes
    rows = []
    for name, (compress, decompress) in codecs.items():
        raw = [frame.tobytes() for frame in frames]
        start = time.perf_counter()
        packed = [compress(b) for b in raw]
        compress_s = (time.perf_counter() - start) / len(raw)
        start = time.perf_counter()
        for b in packed:
            decompress(b)
        decompress_s = (time.perf_counter() - start) / len(raw)
        size = float(np.mean([len(b) for b in packed]))
        # A batch rebuilds N_STACK + 1 frames per transition.
        batch_extra = decompress_s * BATCH_SIZE * (N_STACK + 1)
        rows.append(
            [
                name,
                f"{size:.0f}",
                f"{frame_bytes / size:.1f}x",
                f"{compress_s * 1e6:.0f}",
                f"{decompress_s * 1e6:.1f}",
                f"{batch_extra * 1e3:.2f} ms ({batch_extra / sb3_latency:.1f}x SB3's sample)",
                f"{(size + 60) * 1e6 / 2**30:.2f} GiB",
            ]
        )
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--capacity", type=int, help="FrameStackReplayBuffer capacity to fill")
    parser.add_argument("--sb3-capacity", type=int, help="capacity of both latency buffers")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks/replay_buffer.md"))
    args = parser.parse_args()
    capacity = args.capacity or (100_000 if args.quick else 1_000_000)
    small = args.sb3_capacity or (10_000 if args.quick else 50_000)
    n_samples, rounds = (200, 5) if args.quick else (1000, 7)
    # Sampling is single-threaded numpy; one torch thread keeps the tensor copies comparable.
    th.set_num_threads(1)

    start = time.perf_counter()
    episodes = record_breakout(3000 if args.quick else 20_000)
    n_steps = sum(len(e.actions) for e in episodes)
    print(f"recorded {n_steps} Breakout steps, {len(episodes)} lives", flush=True)
    mean_life = n_steps / len(episodes)
    stream = transitions(episodes)

    # 1. A full buffer of `capacity` transitions: memory, validity and sampling at full size.
    gc.collect()
    rss_before = proc_status_bytes("VmRSS")
    big = FrameStackReplayBuffer(capacity, OBS_SPACE, ACTION_SPACE, device="cpu")
    fill_s = fill(big, stream, capacity)
    assert big.full
    rss_full = proc_status_bytes("VmRSS")
    rows, envs = np.arange(big.buffer_size), np.zeros(big.buffer_size, dtype=int)
    valid_fraction = float(big.is_valid(rows, envs).mean())
    big_latency = compare_latency({"big": big}, n_samples, 3)["big"]
    big_nbytes, big_frames_per_row = big.nbytes, big.frames_written / capacity
    print(f"filled {capacity} in {fill_s:.0f} s, RSS +{(rss_full - rss_before) / 2**30:.2f} GiB")
    del big
    gc.collect()

    # 2. Sample latency against SB3's ReplayBuffer, both at a capacity SB3's fits in RAM.
    stock = ReplayBuffer(small, OBS_SPACE, ACTION_SPACE, device="cpu")
    frames = FrameStackReplayBuffer(small, OBS_SPACE, ACTION_SPACE, device="cpu")
    for buffer in (stock, frames):
        fill(buffer, transitions(episodes), small)
    sb3_arrays = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    sb3_per_transition = sum(getattr(stock, name).nbytes for name in sb3_arrays) / small
    latency = compare_latency({"sb3": stock, "frames": frames}, n_samples, rounds)
    del stock, frames
    gc.collect()

    # 3. Would compressing the stored frames pay?
    pool = np.concatenate([e.frames for e in episodes])[:2000]
    compression = compression_study(pool, latency["sb3"])

    per_transition = big_nbytes / capacity
    gib = 2**30
    results = [
        [
            "bytes per stored transition",
            f"{per_transition:.0f} B",
            f"{sb3_per_transition:.0f} B",
            f"{sb3_per_transition / per_transition:.2f}x smaller (target >= 7.8x, <= 7200 B)",
        ],
        [
            f"array memory, capacity {capacity:,}",
            f"{big_nbytes / gib:.2f} GiB",
            f"{sb3_per_transition * capacity / gib:.1f} GiB (computed)",
            "",
        ],
        [
            f"RSS growth after filling {capacity:,}",
            f"{(rss_full - rss_before) / gib:.2f} GiB",
            "",
            f"whole process {rss_full / gib:.2f} GiB = {rss_full / 1e9:.2f} GB (target < 8 GB)",
        ],
        ["peak RSS of the run (VmHWM)", f"{proc_status_bytes('VmHWM') / gib:.2f} GiB", "", ""],
        [
            f"sample(32) latency, capacity {small:,}",
            f"{latency['frames'] * 1e6:.0f} us",
            f"{latency['sb3'] * 1e6:.0f} us",
            f"ratio {latency['frames'] / latency['sb3']:.2f} (target <= 1.5)",
        ],
        [
            f"sample(32) latency, capacity {capacity:,}",
            f"{big_latency * 1e6:.0f} us",
            "",
            f"ratio {big_latency / latency['sb3']:.2f} to SB3 at {small:,}",
        ],
        ["add() throughput while filling", f"{capacity / fill_s:,.0f} /s", "", ""],
        [
            "rows sampleable once full",
            f"{valid_fraction:.2%}",
            "100%",
            f"{big_frames_per_row:.3f} frames written per transition",
        ],
    ]
    report = f"""# Replay buffer benchmark: FrameStackReplayBuffer vs SB3 ReplayBuffer

Command: `python -m benchmarks.replay_buffer{" --quick" if args.quick else ""}`
Date: {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
Versions: Python {platform.python_version()}, numpy {np.__version__}, torch {th.__version__},
stable-baselines3 {stable_baselines3.__version__}, gymnasium {gym.__version__},
ale-py {ale_py.__version__}. Machine: {os.cpu_count()} CPUs, load average
{os.getloadavg()[0]:.1f} at the end (other jobs share it), torch set to 1 thread.

Data: {n_steps:,} steps of random-policy Breakout (SB3 AtariWrapper, life loss ends an
episode: {len(episodes)} lives, {mean_life:.0f} steps each on average), replayed in a loop, one
env; an episode starts with its first frame repeated 4 times. Observations (4, 84, 84) uint8.

{table(["measure", "FrameStackReplayBuffer", "SB3 ReplayBuffer", "note"], results)}

SB3's buffer needs {sb3_per_transition * 1e6 / 1e9:.0f} GB at capacity 1M, more than this
machine's memory, so the latency comparison uses capacity {small:,} for both buffers (same
frames, median of {rounds} interleaved rounds of {n_samples} samples); the
FrameStackReplayBuffer is also timed at {capacity:,}. Latency includes the conversion to
torch tensors, as `DQN.train` sees it.

Rows not sampleable: each life starts with one new frame that is in no `next_obs`, so a life of
L steps writes L + 1 frames. The ring has 1 % headroom (`frame_headroom=0.01`); with
random-play lives of about {mean_life:.0f} steps the oldest rows lose their frames shortly before
the write cursor reaches them, and `sample` redraws them. Raise `frame_headroom` to about
1 / (mean life length) to keep all rows, at 70 bytes per transition per percent.

## Would compressing the frames pay?

Per-frame compression of {len(pool)} of these frames with the standard library's codecs
(zstandard and lz4 are not installed here, so not measured; they decompress faster than zlib).
"Extra per batch" is decompressing the {N_STACK + 1} frames of each of {BATCH_SIZE}
transitions, one at a time, compared with SB3's whole `sample(32)` above.

{
        table(
            [
                "codec",
                "bytes/frame",
                "ratio",
                "compress us",
                "decompress us",
                "extra per batch",
                "1M buffer (est.)",
            ],
            compression,
        )
    }

Not implemented: uncompressed, a full 1M Breakout buffer already fits in 8 GB, while
per-frame decompression would make sampling several times slower than SB3's (the latency
target is 1.5x; the extra 2 ms would also add about 7 % to a DQN gradient step, 28 ms on
this machine). Worth it only to hold several 1M buffers, or 10M, on one machine; then a
zstd or lz4 codec (a new dependency) with decompression of only the distinct frames of a batch.
"""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    print(f"wrote {args.output} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
