"""``python -m experiments.training_games DIR... [--by KEY] [--at STEP...] [--last N]``:
training-game scores by step, the measure published learning curves plot.

Papers plot the mean score of the last N training games (Young & Tian's MinAtar figure: 100,
as Machado et al. recommend for the ALE), not greedy evaluations. To set runs beside such a
curve this prints a markdown table: per step and group, the mean over runs of each run's mean
of its last ``--last`` games ended by that step, and in brackets the lowest and highest run.
Games come from each run's ``games.csv``; runs, groups (``--by``) and seeds are found exactly
as :mod:`experiments.compare` finds them, so the two describe the same runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from experiments.compare import (
    DEFAULT_BY,
    CompareError,
    Run,
    Section,
    cell,
    dir_paths,
    find_runs,
    group_runs,
    in_range,
    label_runs,
    one_run_per_seed,
)
from experiments.errors import ConfigError, OneLineParser
from experiments.run_dir import GAMES, RunDir

#: Young & Tian's moving average (MinAtar README, learning curves).
DEFAULT_LAST = 100


def last_games_mean(games: pd.DataFrame, step: int, last: int) -> float:
    """Mean score of the ``last`` games ended by ``step``; NaN when none had ended."""
    scores = games.loc[games["timesteps"] <= step, "score"].to_numpy(float)[-last:]
    return float(scores.mean()) if len(scores) else float("nan")


def read_games(run: Run) -> pd.DataFrame:
    """A run's training games. :raises CompareError: when the run has no readable games.csv."""
    path = RunDir(run.path).games_path
    try:
        games = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise CompareError(f"{path}: cannot read its training games ({error})") from None
    if not {"timesteps", "score"} <= set(games.columns):
        raise CompareError(f"{path}: no timesteps and score columns ({GAMES} of another layout)")
    return games


def default_steps(section: Section) -> list[int]:
    """The quarters of the section's budget: four points along its curve."""
    return [section.steps * quarter // 4 for quarter in (1, 2, 3, 4)]


def games_table(
    groups: Mapping[Section, Mapping[str, list[Run]]], at: Sequence[int] | None, last: int
) -> list[str]:
    """Markdown: per section, a row per step and a column per group."""
    lines = []
    for section, labels in groups.items():
        games = {label: [read_games(run) for run in runs] for label, runs in labels.items()}
        header = " | ".join(f"{label} (n={len(runs)})" for label, runs in labels.items())
        lines += [
            f"## {section}",
            "",
            f"| env steps | {header} |",
            "|---" * (len(labels) + 1) + "|",
        ]
        for step in at or default_steps(section):
            cells = []
            for tables in games.values():
                means = np.array([last_games_mean(table, step, last) for table in tables])
                if np.isnan(means).any():
                    cells.append("a run had no game yet")
                else:
                    cells.append(f"{means.mean():.2f} ({means.min():.2f} - {means.max():.2f})")
            lines.append(f"| {step:,} | {' | '.join(cell(text) for text in cells)} |")
        lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: prints the table; 1 with one ``error:`` line on stderr otherwise."""
    parser = OneLineParser(
        prog="python -m experiments.training_games",
        description="Training-game scores by step (mean of each run's last N games).",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run or sweep dirs")
    parser.add_argument("--by", default=DEFAULT_BY, metavar="KEY", help="as for compare")
    parser.add_argument("--at", type=int, nargs="+", metavar="STEP", help="default: quarters")
    parser.add_argument("--last", type=int, default=DEFAULT_LAST, help="games (%(default)s)")
    try:
        args = parser.parse_args(argv)
        in_range("--last", args.last, 1, sys.maxsize)
        for step in args.at or ():
            in_range("--at", step, 1, sys.maxsize)
        runs = label_runs(find_runs(dir_paths(args.dirs)), args.by)
        lines = games_table(one_run_per_seed(group_runs(runs)), args.at, args.last)
    except (CompareError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    header = f"Mean score of each run's last {args.last} training games ended by each step;"
    try:
        print(header, "mean over runs (lowest - highest run).", "", *lines, sep="\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped (| head): nothing left to say, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
