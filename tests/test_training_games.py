"""experiments/training_games.py on run dirs written by hand: the last-N-games means by step."""

from __future__ import annotations

import math
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments import training_games
from experiments.run_dir import RunDir
from tests.test_compare import write_run

ROOT = Path(__file__).resolve().parents[1]


def write_games(run_dir: Path, rows: list[tuple[int, float]]) -> None:
    lines = ["timesteps,score,length", *(f"{step},{score},10" for step, score in rows)]
    RunDir(run_dir).games_path.write_text("\n".join(lines) + "\n")


def test_last_games_mean_counts_only_games_ended_by_the_step() -> None:
    games = pd.DataFrame({"timesteps": [10, 20, 30, 40], "score": [1.0, 2.0, 3.0, 10.0]})
    assert training_games.last_games_mean(games, 30, last=2) == 2.5
    assert training_games.last_games_mean(games, 35, last=100) == 2.0
    assert math.isnan(training_games.last_games_mean(games, 5, last=2))  # no game had ended


def test_table_per_group_mean_and_range_over_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for seed, scores in enumerate([(1.0, 3.0), (5.0, 7.0)]):
        run = write_run(tmp_path / f"{seed}_dqn", 1.0, seed=seed, steps=(500, 1000))
        write_games(run, [(400, scores[0]), (900, scores[1])])
    other = write_run(tmp_path / "2_softmax", 1.0, algo="softmax", steps=(500, 1000))
    write_games(other, [(600, 2.0)])

    assert training_games.main([str(tmp_path), "--at", "500", "1000", "--last", "1"]) == 0
    out = capsys.readouterr().out
    assert "| env steps | dqn (n=2) | softmax (n=1) |" in out
    assert "| 500 | 3.00 (1.00 - 5.00) | a run had no game yet |" in out
    assert "| 1,000 | 5.00 (3.00 - 7.00) | 2.00 (2.00 - 2.00) |" in out


def test_default_steps_are_the_budgets_quarters(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_games(write_run(tmp_path / "run", 1.0, steps=(400, 800)), [(100, 4.0)])
    assert training_games.main([str(tmp_path)]) == 0
    rows = [line.split(" | ")[0] for line in capsys.readouterr().out.splitlines()]
    assert [row for row in rows if row[2:3].isdigit()] == ["| 200", "| 400", "| 600", "| 800"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--last", "0"], "error: --last must be in 1.."),
        (["--at", "-5"], "error: --at must be in 1.."),
        (["--by", "nope.key"], "error: --by nope.key"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    write_games(write_run(tmp_path / "run", 1.0), [(100, 4.0)])
    assert training_games.main([str(tmp_path), *argv]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(message)


def test_a_run_without_games_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path / "run", 1.0)
    assert training_games.main([str(tmp_path)]) == 1
    assert "cannot read its training games" in capsys.readouterr().err


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    for seed in range(30):  # a table longer than a pipe's first line
        write_games(write_run(tmp_path / f"{seed}", 1.0, seed=seed), [(100, 4.0)])
    command = f"{shlex.quote(sys.executable)} -m experiments.training_games {tmp_path} | head -1"
    result = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.startswith("Mean score") and result.stderr.count("\n") <= 2
    assert "Traceback" not in result.stderr
