"""Bad command lines end with one line naming the key; Hydra's own flags keep working.

docs/config_errors.md lists bad inputs with the exact line each gets; every row is checked here
in-process (composition, checks, and building the envs and the model, as ``run.py`` does), so
the table cannot drift from the code. A few runs of the real ``run.py`` check the rest: the
exit code, no traceback, no run dir, and Hydra's flags.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from experiments.cli import user_error
from experiments.config import CONF_DIR
from experiments.train import build

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "config_errors.md"
_ROW = re.compile(r"^\| `((?:\w+=\S* )*)python run\.py ?(.*?)` \| `(.*)` \|$")


def _table_rows() -> list[tuple[dict[str, str], list[str], str]]:
    rows = []
    for line in TABLE.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            env = dict(pair.split("=", 1) for pair in match.group(1).split())
            rows.append((env, shlex.split(match.group(2)), match.group(3)))
    return rows


ROWS = _table_rows()


def test_the_table_lists_at_least_25_bad_inputs() -> None:
    assert len(ROWS) >= 25


def _error_line(argv: list[str]) -> str | None:
    """What ``run.py ARGV`` reports, in-process: ``error: ...``, or None when it would train."""
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=argv)
        env, eval_env, _ = build(cfg)
    except Exception as error:
        message = user_error(error)
        assert message is not None, f"{argv} raised a non-user error: {error!r}"
        return f"error: {message}"
    env.close()
    eval_env.close()
    return None


@pytest.mark.parametrize(("env", "argv", "expected"), ROWS, ids=[" ".join(r[1]) for r in ROWS])
def test_every_documented_bad_input_gets_its_documented_line(
    monkeypatch, env: dict[str, str], argv: list[str], expected: str
) -> None:
    if "device=cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _error_line(argv) == expected


#: Rows whose check once relied on an ``assert`` (in OmegaConf or ours) or on message text.
_UNDER_O = ("algo=ppo dqn.gamma=0.5", "family=ppo", "env = cartpole", "env=cartpole,", "dqn.tau=0")


@pytest.mark.parametrize(
    ("env", "argv", "expected"), [r for r in ROWS if " ".join(r[1]) in _UNDER_O]
)
def test_documented_errors_hold_under_python_O(
    env: dict[str, str], argv: list[str], expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-O", "run.py", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled", **env},
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == expected


def run_py(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run.py", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled", **env},
        timeout=120,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["dqn.learning_rate=-1"],  # caught by our checks, inside the job
        ["--config-name", "config", "env=nope"],  # caught by Hydra while composing
        ["-cn", "config", "+dqn.policy_kwargs.dueling=no"],
        ["-m", "--cfg", "job", "seed=0,1"],  # two of Hydra's modes at once
    ],
)
def test_run_py_refuses_bad_input_with_one_line_and_no_run_dir(tmp_path: Path, argv) -> None:
    run_dir = tmp_path / "run"
    result = run_py(*argv, f"hydra.run.dir={run_dir}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not run_dir.exists()


def test_hydra_full_error_shows_the_traceback() -> None:
    result = run_py("total_timesteps=0", HYDRA_FULL_ERROR="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "total_timesteps=0: must be > 0" in result.stderr


def test_cfg_job_prints_the_chosen_algorithms_hyperparameters() -> None:
    result = run_py("--cfg", "job", "algo=ppo")
    assert result.returncode == 0, result.stderr
    assert "ppo:\n  learning_rate: 0.00" in result.stdout  # hparams/ppo/cartpole.yaml's


def test_help_lists_the_config_groups() -> None:
    result = run_py("--help")
    assert result.returncode == 0
    for group in ("env", "algo", "logger", "experiment"):
        options = sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in result.stdout


def test_an_unwritable_run_dir_is_one_line(tmp_path: Path) -> None:
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    result = run_py("total_timesteps=300", f"hydra.run.dir={blocked / 'run'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {blocked / 'run'}: cannot be created or written (Not a directory); choose a "
        "writable place for it (hydra.run.dir, hydra.sweep.dir, or run from a writable folder)"
    ]
