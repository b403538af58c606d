"""Does our Breakout pipeline learn? Training scores of our runs against rl-zoo's published log.

    python -m benchmarks.breakout_vs_zoo RUN_DIR [RUN_DIR ...] --zoo 0.monitor.csv
        [--window 250000] [--end 750000] [--png docs/reports/breakout_750k.png]

RUN_DIRs are runs of ``python run.py env=breakout_sb3 env.id=BreakoutNoFrameskip-v4
dqn.buffer_size=10000 total_timesteps=750000 seed=S``, the setup of rl-zoo's published agent
(rl-trained-agents, ``dqn/BreakoutNoFrameskip-v4_1``); ``--zoo`` is that agent's
``0.monitor.csv``. Both logs list every whole training game (score and length); ours also
says at which env step it ended (``games.csv``), the zoo's does not, so its steps are counted
from the lengths: SB3's Monitor sits on the frame-skip-1 env, so a length is in frames, 4 per
agent step, plus the frames that AtariWrapper plays itself at each reset (no-ops, FIRE, the
step after a life lost), which are no agent's steps. Two ways to compare like with like:

- frames / 4 on both sides: our games are counted that way too, exactly as the zoo's;
- env steps on both sides: ours as logged, the zoo's estimated as frames / 4 minus the reset
  steps per game measured on our runs (the same wrappers; about 17, whatever the score). On
  the zoo's 10M-step log this lands its last game within 0.01 % of 10M env steps.

Prints a markdown table: per ``--window`` of env steps, the number of games and their mean
score, for each run and the zoo (docs/reports/breakout_750k.md holds it); writes a PNG of the
training scores (each game, and the mean of the last 100 games).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from experiments.run_dir import GAMES, RunDir

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "reports" / "breakout_750k.png"
FRAMES_PER_STEP = 4
ROLLING = 100


@dataclass
class Games:
    """Whole training games in the order they ended."""

    label: str
    steps: np.ndarray  # env step at which each game ended
    scores: np.ndarray
    lengths: np.ndarray  # frames

    @property
    def steps_from_lengths(self) -> np.ndarray:
        """The end step of each game counted as the zoo's log must be: frames / 4."""
        return np.cumsum(self.lengths) / FRAMES_PER_STEP


def read_games(run_dir: Path) -> Games:
    """A run's ``games.csv``, labelled by its seed."""
    run = RunDir(run_dir)
    seed, rows = run.config().seed, run.rows(GAMES)
    return Games(
        f"ours, seed {seed}",
        np.array([int(r["timesteps"]) for r in rows]),
        np.array([float(r["score"]) for r in rows]),
        np.array([int(r["length"]) for r in rows]),
    )


def read_monitor(path: Path) -> Games:
    """An SB3 ``monitor.csv`` (a JSON comment line, then ``r,l,t``); steps from the lengths."""
    with path.open(newline="") as file:
        file.readline()
        rows = list(csv.DictReader(file))
    lengths = np.array([int(r["l"]) for r in rows])
    games = Games("rl-zoo", np.zeros(0), np.array([float(r["r"]) for r in rows]), lengths)
    games.steps = games.steps_from_lengths
    return games


def reset_steps_per_game(runs: list[Games]) -> float:
    """Steps per game that frames / 4 counts beyond the env steps (the wrappers' resets)."""
    extra = sum(float(g.steps_from_lengths[-1] - g.steps[-1]) for g in runs)
    return extra / sum(len(g.steps) for g in runs)


def with_estimated_env_steps(zoo: Games, reset_steps: float) -> Games:
    """The zoo's games with env steps estimated: frames / 4 minus ``reset_steps`` per game."""
    steps = zoo.steps_from_lengths - reset_steps * np.arange(1, len(zoo.lengths) + 1)
    return Games(zoo.label, steps, zoo.scores, zoo.lengths)


def window_means(
    steps: np.ndarray, scores: np.ndarray, edges: np.ndarray
) -> list[tuple[int, float]]:
    """(games, mean score) of the games that ended in each window ``[edges[i], edges[i+1])``."""
    out = []
    for low, high in itertools.pairwise(edges):
        inside = scores[(steps >= low) & (steps < high)]
        out.append((len(inside), float(inside.mean()) if len(inside) else float("nan")))
    return out


def rolling_mean(scores: np.ndarray, n: int = ROLLING) -> np.ndarray:
    """Mean of the last ``n`` games at each game (fewer at the start)."""
    sums = np.cumsum(scores)
    counts = np.minimum(np.arange(1, len(scores) + 1), n)
    shifted = np.concatenate([np.zeros(n), sums])[: len(scores)]
    return (sums - shifted) / counts


def figure(runs: list[Games], zoo: Games, end: int) -> Figure:
    """Each game's score (dots) and the mean of the last 100 (lines), ours and the zoo's."""
    fig = Figure(figsize=(9, 4.8))
    ax = fig.subplots()
    for games in [*runs, zoo]:
        keep = games.steps <= end
        dots = ax.scatter(games.steps[keep], games.scores[keep], s=2, alpha=0.25)
        ax.plot(
            games.steps[keep],
            rolling_mean(games.scores)[keep],
            color=dots.get_facecolor()[0],
            alpha=1.0,
            label=f"{games.label} (mean of last {ROLLING} games)",
        )
    ax.set_xlabel("env steps (zoo: estimated from frames)")
    ax.set_ylabel("training game score (whole game, raw)")
    ax.set_xlim(0, end)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def table(runs: list[Games], zoo: Games, edges: np.ndarray) -> list[str]:
    """Markdown: per window, games and mean score of each run and the zoo, both step counts.

    :param zoo: with ``steps`` the estimated env steps (:func:`with_estimated_env_steps`)
    """
    windows = [f"{low / 1e3:.0f}k-{high / 1e3:.0f}k" for low, high in itertools.pairwise(edges)]
    lines = [
        "| log | steps counted by | " + " | ".join(windows) + " |",
        "|---|---|" + "---:|" * len(windows),
    ]
    rows = [(g, "env steps", g.steps) for g in runs]
    rows += [(zoo, "env steps (estimated)", zoo.steps)]
    rows += [(g, "frames / 4", g.steps_from_lengths) for g in [*runs, zoo]]
    for games, counted, steps in rows:
        cells = [f"{mean:.2f} ({n})" for n, mean in window_means(steps, games.scores, edges)]
        lines.append(f"| {games.label} | {counted} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run dirs with games.csv")
    parser.add_argument("--zoo", type=Path, required=True, help="rl-zoo's 0.monitor.csv")
    parser.add_argument("--window", type=int, default=250_000)
    parser.add_argument("--end", type=int, default=750_000)
    parser.add_argument("--png", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    runs = [read_games(run_dir) for run_dir in args.runs]
    reset_steps = reset_steps_per_game(runs)
    zoo = with_estimated_env_steps(read_monitor(args.zoo), reset_steps)
    edges = np.arange(0, args.end + 1, args.window)
    figure(runs, zoo, args.end).savefig(args.png, dpi=110)
    lines = [
        "Mean full-game training score per window (games that ended in it, in brackets). "
        f"The zoo's env steps: frames / 4 minus {reset_steps:.1f} reset steps per game, as "
        f"measured on our runs; its last game ends at {zoo.steps[-1]:,.0f} estimated env steps.",
        "",
        *table(runs, zoo, edges),
        "",
        f"![training scores]({args.png.name})",
    ]
    print("\n".join(lines))
    print(f"wrote {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
