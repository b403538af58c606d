"""``python -m experiments.evaluate RUN_DIR``: the run's own agent, whole games, one-line errors."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from custom.dqn import SoftmaxDQN
from experiments.checkpoints import MODEL, load_config, load_model
from experiments.evaluate import histogram, main
from experiments.run_dir import RunDir
from experiments.train import train

ROOT = Path(__file__).resolve().parent.parent
QUICK = (
    "total_timesteps=3000",
    "dqn.learning_starts=500",
    "dqn.gradient_steps=4",
    "eval.freq=0",
    "eval.final_episodes=20",
    "checkpoint.freq=1000",
    "logger=none",
    "progress_bar=false",
)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One short finished CartPole run shared by the tests that only read it."""
    from hydra import compose, initialize_config_dir

    from experiments.config import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(QUICK))
    return train(cfg, run_dir=tmp_path_factory.mktemp("finished"))


def _error(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert isinstance(caught.value.code, str), caught.value.code  # sys.exit(line): status 1
    return caught.value.code


def test_evaluate_reproduces_the_runs_last_evaluation_within_noise(
    finished_run: Path, capsys
) -> None:
    with (finished_run / "evaluations.csv").open() as file:
        last = list(csv.DictReader(file))[-1]
    main([str(finished_run), "--episodes", "20", "--device", "cpu"])
    out = capsys.readouterr().out
    mean, std = (float(out.split(name)[1].split()[0]) for name in ("mean ", "std "))
    noise = np.hypot(float(last["std_reward"]), std) / np.sqrt(20)
    assert abs(mean - float(last["mean_reward"])) <= 3 * noise + 1e-9
    assert "20 games" in out and "min " in out and "max " in out and "#" in out


@pytest.mark.slow
def test_evaluate_writes_the_best_game_as_a_gif(compose_config, tmp_path: Path) -> None:
    cfg = compose_config(
        *QUICK,
        "env=breakout",
        "total_timesteps=300",
        "dqn.learning_starts=100",
        "dqn.buffer_size=2000",
        "dqn.gradient_steps=1",
        "eval.final_episodes=1",
    )
    run_dir = train(cfg, run_dir=tmp_path / "run")
    gif = tmp_path / "best.gif"
    main([str(run_dir), "--episodes", "1", "--gif", str(gif), "--epsilon", "0.05"])
    assert gif.stat().st_size > 1000


def test_a_gif_of_an_env_that_cannot_render_here_is_one_line(finished_run: Path, tmp_path) -> None:
    gif = tmp_path / "best.gif"
    try:
        import pygame  # noqa: F401
    except ImportError:
        message = _error([str(finished_run), "--episodes", "1", "--gif", str(gif)])
        assert message.startswith(f"error: --gif {gif}: this env cannot film its games:")
        assert not gif.exists()
    else:
        main([str(finished_run), "--episodes", "1", "--gif", str(gif)])
        assert gif.stat().st_size > 1000


def test_a_softmax_run_is_loaded_as_softmax(compose_config, tmp_path: Path) -> None:
    cfg = compose_config(*QUICK, "algo=softmax", "total_timesteps=600")
    run_dir = train(cfg, run_dir=tmp_path)
    model = load_model(load_config(RunDir(run_dir).checkpoints()[-1]), run_dir / MODEL, None, "cpu")
    assert type(model) is SoftmaxDQN


def test_bad_input_is_one_line(finished_run: Path, tmp_path: Path) -> None:
    assert _error([str(tmp_path / "nope")]) == f"error: {tmp_path / 'nope'}: no such directory"
    assert _error([str(tmp_path)]) == (
        f"error: {tmp_path}: has no checkpoint and no model.zip: not a run dir, or empty"
    )
    assert _error([str(finished_run), "--episodes", "0"]) == "error: --episodes=0: must be > 0"
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(finished_run), str(copy)], check=True)
    data = (copy / MODEL).read_bytes()
    (copy / MODEL).write_bytes(data[:1000])
    assert "truncated or damaged" in _error([str(copy)])
    config = RunDir(copy).checkpoints()[-1] / "config.yaml"
    config.write_text(config.read_text().replace("id: CartPole-v1", "id: Acrobot-v1"))
    assert "does not fit env=cartpole (Acrobot-v1)" in _error([str(copy), "--checkpoint", "latest"])


def test_the_command_line_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", str(tmp_path / "nope")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such directory"]


def test_bad_options_are_one_line_before_any_game(finished_run: Path, tmp_path: Path) -> None:
    run = str(finished_run)
    assert "invalid int value: 'abc'" in _error([run, "--episodes", "abc"])
    assert _error([run, "--seed", "-1"]) == "error: --seed=-1: must be >= 0"
    missing = tmp_path / "nope" / "best.gif"
    assert _error([run, "--gif", str(missing)]) == (
        f"error: --gif {missing}: {missing.parent} is not an existing directory"
    )
    assert "is a directory" in _error([run, "--gif", str(tmp_path)])


def test_histogram_counts_every_score() -> None:
    lines = histogram(np.array([1.0, 1.0, 2.0, 5.0]))
    assert sum(int(line.split(")")[1].split()[0]) for line in lines) == 4
