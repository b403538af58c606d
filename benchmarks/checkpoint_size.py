"""Size and write/read time of a checkpoint, with and without the replay buffer, on Breakout.

    python -m benchmarks.checkpoint_size [--transitions 20000] [--out docs/reports/checkpoints.md]

Fills Breakout's frame-once replay buffer (``conf/env/breakout.yaml``'s setup) with
``--transitions`` random-policy transitions, then times ``Checkpointer.save`` without and with
``checkpoint.replay``, and ``load_replay_buffer``. A 1M-transition figure is the measured bytes
per transition times 1M: an extrapolation, stated as such.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.harness import machine
from experiments.checkpoints import MODEL, REPLAY, Checkpointer
from experiments.config import compose_config
from experiments.train import build

ROOT = Path(__file__).resolve().parent.parent


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    """Measure and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reports" / "checkpoints.md")
    args = parser.parse_args()
    n = args.transitions
    overrides = [
        "env=breakout",
        f"dqn.buffer_size={n}",
        f"total_timesteps={n + 10}",
        f"dqn.learning_starts={n + 5}",  # random actions, no gradient step: a filled buffer
        "logger=none",
        "progress_bar=false",
    ]
    cfg = compose_config(overrides)
    env, eval_env, model = build(cfg)
    start = time.perf_counter()
    model.learn(n)
    fill_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        plain = Checkpointer(run_dir / "a", cfg, None, keep=1, replay=False)
        start = time.perf_counter()
        small = plain.save(model)
        plain_s = time.perf_counter() - start
        full = Checkpointer(run_dir / "b", cfg, None, keep=1, replay=True)
        start = time.perf_counter()
        big = full.save(model)
        replay_s = time.perf_counter() - start
        start = time.perf_counter()
        model.load_replay_buffer(big / REPLAY)  # type: ignore[attr-defined]
        load_s = time.perf_counter() - start
        model_bytes, replay_bytes = (small / MODEL).stat().st_size, (big / REPLAY).stat().st_size
        plain_bytes = _size(small)
    env.close()
    eval_env.close()
    per = replay_bytes / n
    per_s = (replay_s - plain_s) / n
    mb = 1e6
    rows = [
        f"| checkpoint without replay (model.zip with optimizer, RNGs, config, state) | "
        f"{plain_bytes / mb:.1f} MB (model.zip {model_bytes / mb:.1f} MB) | {plain_s:.2f} s |",
        f"| checkpoint with `checkpoint.replay=true`, {n} transitions | "
        f"{(plain_bytes + replay_bytes) / mb:.1f} MB (replay.pkl {replay_bytes / mb:.1f} MB) | "
        f"{replay_s:.2f} s |",
        f"| reading that replay back (`load_replay_buffer`) | | {load_s:.2f} s |",
        f"| replay per transition | {per / 1e3:.2f} KB | {per_s * 1e6:.1f} us |",
        f"| 1M transitions, extrapolated (x {1_000_000 // n}) | {per * 1e6 / 1e9:.1f} GB | "
        f"{per_s * 1e6:.0f} s |",
    ]
    table = "\n".join(rows)
    text = f"""# Checkpoint size and write time (Breakout, frame-once replay)

`python -m benchmarks.checkpoint_size --transitions {n}` on {machine()["cpu"]} (2 cores, shared with
other jobs while measured, so times are upper bounds), local disk, fsync included.
Replay filled with {n} random-policy transitions in {fill_s:.0f} s.

| what | size | write time |
|---|---|---|
{table}

Only the latest checkpoint keeps its replay (older ones are pruned to the model), so disk use
is about one replay plus `checkpoint.keep` models. With `checkpoint.replay=true` on a 1M
Breakout buffer choose `checkpoint.freq` so that the write time is small against the time
between checkpoints (e.g. 250k steps, about 70 min of training at 58 steps/s), and leave
free disk for two replays (the new one is written before the old one is deleted).
"""
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
