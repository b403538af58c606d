"""Does our Breakout pipeline learn? Training scores of our runs against rl-zoo's published log.

docs/reports/breakout_750k.md says which runs, and how the zoo's frames become env steps.
"""

import argparse
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmarks.harness import table
from experiments.run_dir import GAMES, RunDir

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "reports" / "breakout_750k.png"


@dataclass
class Games:
    """Whole training games in the order they ended: end step, score, length in frames."""

    label: str
    steps: np.ndarray
    scores: np.ndarray
    lengths: np.ndarray

    @property
    def steps_from_lengths(self) -> np.ndarray:
        """The end step of each game counted as the zoo's log must be: frames / 4."""
        return np.cumsum(self.lengths) / 4


def read_games(run_dir: Path) -> Games:
    run = RunDir(run_dir)
    rows = run.rows(GAMES)
    columns = (np.array([float(r[key]) for r in rows]) for key in ("timesteps", "score", "length"))
    return Games(f"ours, seed {run.config().seed}", *columns)


def read_monitor(path: Path, reset_steps: float) -> Games:
    """An SB3 ``monitor.csv`` (a JSON line, then ``r,l,t``); env steps estimated from lengths."""
    games = pd.read_csv(path, skiprows=1)
    zoo = Games("rl-zoo", np.zeros(0), games["r"].to_numpy(float), games["l"].to_numpy(float))
    zoo.steps = zoo.steps_from_lengths - reset_steps * np.arange(1, len(games) + 1)
    return zoo


def figure(all_games: list[Games], end: int) -> Figure:
    fig = Figure(figsize=(9, 4.8))
    ax = fig.subplots()
    for games in all_games:
        keep = games.steps <= end
        dots = ax.scatter(games.steps[keep], games.scores[keep], s=2, alpha=0.25)
        mean = pd.Series(games.scores).rolling(100, min_periods=1).mean().to_numpy()[keep]
        label = f"{games.label} (mean of last 100 games)"
        ax.plot(games.steps[keep], mean, color=dots.get_facecolor()[0], label=label)
    ax.set(xlabel="env steps (zoo: estimated from frames)", xlim=(0, end))
    ax.set(ylabel="training game score (whole game, raw)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("runs", type=Path, nargs="+", help="run dirs with games.csv")
    args.add_argument("--zoo", type=Path, required=True, help="rl-zoo's 0.monitor.csv")
    args.add_argument("--window", type=int, default=250_000)
    args.add_argument("--end", type=int, default=750_000)
    args.add_argument("--png", type=Path, default=OUTPUT)
    options = args.parse_args()
    runs = [read_games(run_dir) for run_dir in options.runs]
    extra = sum(float(g.steps_from_lengths[-1] - g.steps[-1]) for g in runs)
    reset_steps = extra / sum(len(g.steps) for g in runs)
    zoo = read_monitor(options.zoo, reset_steps)
    figure([*runs, zoo], options.end).savefig(options.png, dpi=110)
    edges = np.arange(0, options.end + 1, options.window)
    rows = []
    for games, counted, steps in [
        *((g, "env steps", g.steps) for g in runs),
        (zoo, "env steps (estimated)", zoo.steps),
        *((g, "frames / 4", g.steps_from_lengths) for g in [*runs, zoo]),
    ]:
        row = {"log": games.label, "steps counted by": counted}
        for low, high in itertools.pairwise(edges):
            inside = games.scores[(steps >= low) & (steps < high)]
            mean = f"{inside.mean() if len(inside) else float('nan'):.2f} ({len(inside)})"
            row[f"{low / 1e3:g}k-{high / 1e3:g}k"] = mean
        rows.append(row)
    note = f"The zoo's env steps: frames / 4 minus {reset_steps:.1f} reset steps per game, as "
    note += f"measured on our runs; its last game ends at {zoo.steps[-1]:,.0f} estimated env steps."
    print(note, "", *table(rows), "", f"![training scores]({options.png.name})", sep="\n")


if __name__ == "__main__":
    main()
