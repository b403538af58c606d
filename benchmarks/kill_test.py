"""Does a run stopped at a random moment resume without losing or doubling anything?

Runs tests/kill_resume.py's ``kill_and_resume`` (the slow test's verdict) ``--runs`` times on
CartPole, SIGINT, SIGTERM and SIGKILL in turn, each at a random step; tabulates every outcome.
"""

import dataclasses
import random
import signal
import time
from pathlib import Path

from benchmarks.harness import Report, parser
from tests.kill_resume import ARGS, CHECKPOINT_FREQ, TOTAL, TRAIN_FREQ, kill_and_resume


def main() -> None:
    tmp = "/tmp/valuerl_kill_test"
    options = parser(__doc__, "../reports/kill_test.md", runs=20, seed=0, workdir=tmp).parse_args()
    Path(options.workdir).mkdir(parents=True, exist_ok=True)
    rng, signals = random.Random(options.seed), (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
    report, rows = Report("Kill test: stop a run at a random moment, resume, check"), []
    for index in range(options.runs):
        signum = signals[index % len(signals)]
        first = CHECKPOINT_FREQ if signum == signal.SIGKILL else 0  # else nothing to resume
        run_dir = Path(options.workdir, f"run{index:02d}_{int(time.time())}")
        outcome = kill_and_resume(run_dir, signum, rng.randrange(first, TOTAL * 9 // 10))
        print(f"{index + 1}/{options.runs} {outcome}", flush=True)
        rows.append({**dataclasses.asdict(outcome), "redone": outcome.redone})
    redone = [row["redone"] for row in rows if row["signal"] == signal.SIGKILL.name] or [0]
    passed = sum(row["ok"] for row in rows)
    note = f"Final model within {TOTAL} + train_freq {TRAIN_FREQ} steps; SIGKILL redoes at most "
    note += f"checkpoint.freq = {CHECKPOINT_FREQ}: here {min(redone)} to {max(redone)}."
    heading = f"CartPole ({', '.join(ARGS)}), W&B offline: {passed} of {options.runs} passed"
    report.section(heading, rows, [note])
    report.write(options.output)


if __name__ == "__main__":
    main()
