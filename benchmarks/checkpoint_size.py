"""Size and write/read time of a checkpoint, with and without the replay buffer, on Breakout.

Fills Breakout's frame-once replay buffer with ``--transitions`` of random play, then times
``Checkpointer.save`` without and with ``checkpoint.replay``, and ``load_replay_buffer``.
"""

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from benchmarks.harness import Report, parser
from experiments.checkpoints import MODEL, REPLAY, Checkpointer
from experiments.config import compose_config
from experiments.train import build

T = TypeVar("T")


def seconds(work: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    return work(), time.perf_counter() - start


def main() -> None:
    options = parser(__doc__, "../reports/checkpoints.md", transitions=20_000).parse_args()
    n, report = options.transitions, Report("Checkpoint size and write time (Breakout)")
    overrides = f"env=breakout dqn.buffer_size={n} dqn.learning_starts={n + 5}"
    cfg = compose_config([*overrides.split(), f"total_timesteps={n + 10}"])  # random play only
    env, eval_env, model = build(cfg)

    def save(folder: str, replay: bool) -> Path:
        return Checkpointer(Path(tmp, folder), cfg, None, keep=1, replay=replay).save(model)

    fill_s = seconds(lambda: model.learn(n))[1]
    with tempfile.TemporaryDirectory() as tmp:
        small, plain_s = seconds(lambda: save("a", replay=False))
        big, replay_s = seconds(lambda: save("b", replay=True))
        load_s = seconds(lambda: model.load_replay_buffer(big / REPLAY))[1]  # type: ignore[attr-defined]
        plain_mb = sum(p.stat().st_size for p in small.rglob("*") if p.is_file()) / 1e6
        model_mb = (small / MODEL).stat().st_size / 1e6
        replay_mb = (big / REPLAY).stat().st_size / 1e6
    env.close()
    eval_env.close()
    replay = f"`checkpoint.replay=true`, {n} transitions (replay.pkl {replay_mb:.1f} MB)"
    extrapolated = "1M transitions, extrapolated (x 1M / transitions)"
    cells = [  # what, MB, seconds
        (f"checkpoint without replay (model.zip {model_mb:.1f} MB)", plain_mb, plain_s),
        (replay, plain_mb + replay_mb, replay_s),
        ("reading that replay back (`load_replay_buffer`)", None, load_s),
        (extrapolated, replay_mb / n * 1e6, (replay_s - plain_s) / n * 1e6),
    ]
    rows = [dict(zip(("what", "MB", "seconds"), row, strict=True)) for row in cells]
    report.section(f"Replay filled with {n} random-policy transitions in {fill_s:.0f} s", rows)
    report.write(options.output)


if __name__ == "__main__":
    main()
