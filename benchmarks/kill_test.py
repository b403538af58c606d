"""Does a run stopped at a random moment resume without losing or doubling anything?

    python -m benchmarks.kill_test [--runs 20] [--seed 0] [--output docs/reports/kill_test.md]

Runs tests/kill_resume.py's ``kill_and_resume`` (the slow test's verdict) ``--runs`` times on
CartPole, SIGINT, SIGTERM and SIGKILL in turn, each at a random step (SIGKILL: after the first
checkpoint, else nothing is left to resume), and tabulates every outcome.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from benchmarks.harness import DOCS, Report, parser, table
from tests.kill_resume import ARGS, CHECKPOINT_FREQ, TOTAL, TRAIN_FREQ, kill_and_resume


def main() -> None:
    args = parser(__doc__, "kill_test.md")
    args.set_defaults(output=DOCS.parent / "reports" / "kill_test.md")
    args.add_argument("--runs", type=int, default=20)
    args.add_argument("--seed", type=int, default=0, help="seed of the random kill steps")
    args.add_argument("--workdir", type=Path, default=Path("/tmp/valuerl_kill_test"))
    options = args.parse_args()
    rng, signals = random.Random(options.seed), (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
    report = Report("Kill test: stop a run at a random moment, resume, check")
    rows, redone, passed = [], [], 0
    for index in range(options.runs):
        signum = signals[index % len(signals)]
        first = CHECKPOINT_FREQ if signum == signal.SIGKILL else 0
        run_dir = options.workdir / f"run{index:02d}_{int(time.time())}"
        o = kill_and_resume(run_dir, signum, rng.randrange(first, TOTAL * 9 // 10))
        print(f"{index + 1}/{options.runs} {o}", flush=True)
        passed += o.ok
        redone += [o.redone] if signum == signal.SIGKILL else []
        rows.append(
            [
                index + 1,
                o.signal,
                o.at_step,
                o.killed_rc,
                o.resumed_rc,
                o.logged_before_kill,
                o.resumed_from,
                o.redone,
                o.final_steps,
                o.duplicate_steps,
                o.wandb_ids,
                "yes" if o.ok else f"NO: {o.problem}",
            ]
        )
    header = [
        "#",
        "signal",
        "signalled at step",
        "exit",
        "resume exit",
        "last logged step",
        "resumed from",
        "redone",
        "final steps",
        "steps twice",
        "W&B ids",
        "ok",
    ]
    report.section(
        f"CartPole ({', '.join(ARGS)}), W&B offline: {passed} of {options.runs} passed",
        [
            f"Final model within {TOTAL} + train_freq {TRAIN_FREQ} steps; SIGKILL redoes at most "
            f"checkpoint.freq = {CHECKPOINT_FREQ} steps.",
            "",
            *table(header, rows),
            "",
            f"SIGKILL: steps redone {min(redone, default=0)} to {max(redone, default=0)}.",
        ],
        figures={"passed": passed, "runs": options.runs, "redone": redone},
    )
    report.write(options.output)


if __name__ == "__main__":
    main()
