"""W&B mode, credentials, the reachability probe, names, config flattening and the SB3 logger ->
W&B bridge. No test reaches the network: servers are local sockets on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import wandb
from wandb.sdk.lib import settings_file
from wandb.sdk.lib.wbauth import wbnetrc

from experiments import tracking
from experiments.errors import ConfigError
from experiments.tracking import (
    OFFLINE_HINT,
    WandbOutputFormat,
    check_logger,
    check_server,
    flatten,
    make_logger,
    run_group,
    run_name,
    server_problem,
    wandb_mode,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))


@pytest.fixture
def fresh_home(no_credentials, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty HOME, with W&B's files where ``wandb login`` puts them by default."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("NETRC", "WANDB_CONFIG_DIR"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    return home


def test_offline_by_default(no_credentials) -> None:
    assert wandb_mode(None) == "offline"


def test_wandb_mode_env_var_wins(no_credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_mode(None) == "online"


def test_logged_in_user_goes_online(no_credentials, tmp_path: Path) -> None:
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    assert wandb_mode(None) == "online"


def test_api_key_goes_online(no_credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode(None) == "online"


def test_explicit_mode_wins_over_everything(no_credentials, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_mode("disabled") == "disabled"


def test_what_wandb_login_writes_for_the_cloud_is_a_login(fresh_home: Path) -> None:
    """wandb 0.31's ``wandb login``: ``machine api.forge.coreweave.com`` in ``~/.netrc``."""
    assert wandb_mode(None) == "offline"
    wbnetrc.write_netrc_auth(host=wandb.Settings().base_url, api_key="k" * 40)
    assert (fresh_home / ".netrc").is_file()
    assert wandb_mode(None) == "online"


def test_what_wandb_login_host_writes_for_a_local_server_is_a_login(fresh_home: Path) -> None:
    """``wandb login --host http://127.0.0.1:8080``: the server in W&B's settings file, the key
    under ``host:port`` in the netrc, both written here by wandb's own writers."""
    host = "http://127.0.0.1:8080"
    wbnetrc.write_netrc_auth(host=host, api_key="k" * 40)
    assert wandb_mode(None) == "offline"  # a key for another server than W&B's cloud
    config_dir = fresh_home / ".config" / "wandb"
    settings = settings_file.SettingsFiles(
        global_settings=config_dir / "settings", local_settings=fresh_home / "wandb" / "settings"
    )
    settings.set("base_url", host, globally=True)
    settings.save()
    assert (config_dir / "settings").is_file()
    assert tracking.wandb_settings().base_url == host
    assert wandb_mode(None) == "online"


def test_an_identity_token_file_is_a_login(no_credentials, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WANDB_IDENTITY_TOKEN_FILE", str(tmp_path / "token"))
    assert wandb_mode(None) == "online"


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections (the kernel does, from its backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def http_server() -> Iterator[str]:
    """A server that answers every request with 404: reachable, whatever it says."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_probe_a_closed_port_fails_at_once() -> None:
    start = time.monotonic()
    problem = server_problem(f"http://127.0.0.1:{_closed_port()}", timeout_s=5)
    assert problem is not None and "refused" in problem
    assert time.monotonic() - start < 2


def test_probe_a_server_that_never_answers_gives_up_after_its_timeout(silent_server) -> None:
    start = time.monotonic()
    problem = server_problem(silent_server, timeout_s=0.5)
    assert problem == "timed out"
    assert time.monotonic() - start < 2


def test_probe_any_http_answer_is_reachable(http_server) -> None:
    assert server_problem(http_server, timeout_s=5) is None


def test_online_with_an_unreachable_server_is_one_line_saying_how_to_run_offline(
    no_credentials, monkeypatch, compose_config
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(ConfigError) as error:
        check_logger(compose_config().logger)
    message = str(error.value)
    assert message.startswith("W&B online mode (W&B credentials found: wandb login or WANDB_API")
    assert message.endswith(OFFLINE_HINT) and "\n" not in message
    assert "logger.mode=offline" in message and "wandb sync" in message


def test_online_checks_the_server_only_when_a_mode_needs_it(
    no_credentials, monkeypatch, silent_server
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", silent_server)
    for mode in ("offline", "disabled"):
        check_server(mode, timeout_s=0.2)  # no probe: it would time out
    with pytest.raises(ConfigError, match=r"^W&B online mode \(logger.mode=online\): cannot"):
        check_server("online", timeout_s=0.2)


def test_a_failed_wandb_init_is_one_line_and_leaves_no_wandb_dir(
    monkeypatch, compose_config, tmp_path: Path
) -> None:
    def unreachable(**kwargs: Any) -> None:
        (Path(kwargs["dir"]) / "wandb" / "run-1").mkdir(parents=True)
        raise wandb.errors.CommError("Timed out initializing run: POST ...\nConsider ...")

    monkeypatch.setattr(tracking.wandb, "init", unreachable)
    cfg = compose_config("logger.mode=offline")
    with pytest.raises(ConfigError) as error, tracking.tracking(cfg, {}, tmp_path):
        pytest.fail("the body must not run")
    assert str(error.value) == (
        f"W&B offline mode (logger.mode=offline): Timed out initializing run: POST ...; "
        f"{OFFLINE_HINT}"
    )
    assert not (tmp_path / "wandb").exists()


def test_run_py_online_without_a_server_exits_in_seconds_leaving_no_run_dir(
    tmp_path: Path,
) -> None:
    """The compute node case: a key exported, no network. One line, exit 1, nothing kept."""
    run_dir = tmp_path / "run"
    env = {key: value for key, value in os.environ.items() if key != "WANDB_MODE"}
    env |= {"WANDB_API_KEY": "k" * 40, "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}"}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "run.py", f"hydra.run.dir={run_dir}", "total_timesteps=100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert time.monotonic() - start < 60  # interpreter and imports on a loaded machine
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: W&B online mode") and line.endswith(OFFLINE_HINT)
    assert not run_dir.exists()


def test_run_name_and_group(compose_config) -> None:
    cfg = compose_config("env=frozenlake", "seed=7")
    assert run_name(cfg, datetime(2026, 1, 2, 3, 4, 5)) == "frozenlake__dqn__7__20260102-030405"
    assert run_group(cfg) == "frozenlake"
    assert run_group(cfg, sweep_name="01-02-03") == "01-02-03"
    assert run_group(compose_config("experiment_name=abl")) == "abl"
    assert run_group(compose_config("logger.group=mine", "experiment_name=abl")) == "mine"


def test_flatten_joins_nested_keys_with_dots() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [2]}}, "e": None}) == {
        "a.b": 1,
        "a.c.d": [2],
        "e": None,
    }


class FakeRun:
    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, Any], int]] = []

    def log(self, row: dict[str, Any], step: int) -> None:
        self.rows.append((row, step))


def test_every_scalar_key_reaches_wandb_under_its_sb3_name_at_num_timesteps() -> None:
    run = FakeRun()
    writer = WandbOutputFormat(run)
    values = {"train/loss": 0.5, "rollout/ep_rew_mean": np.float32(9.0), "time/episodes": 3}
    writer.write(values, {key: None for key in values}, step=1234)
    assert run.rows == [(values, 1234)]


def test_arrays_become_histograms_and_exclusions_are_honoured() -> None:
    run = FakeRun()
    WandbOutputFormat(run).write(
        {
            "rollout/actions": torch.tensor([0, 1, 1, 3]),
            "eval/secret": 1.0,
            "eval/x": np.array(2.0),
        },
        {"rollout/actions": ("csv",), "eval/secret": ("wandb",), "eval/x": None},
        step=5,
    )
    ((row, step),) = run.rows
    assert isinstance(row["rollout/actions"], wandb.Histogram)
    assert row["eval/x"] == 2.0
    assert "eval/secret" not in row
    assert step == 5


def test_logger_writes_progress_csv(tmp_path: Path) -> None:
    logger = make_logger(tmp_path, run=None)
    logger.record("train/loss", 1.5)
    logger.dump(10)
    logger.close()
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    assert lines == ["train/loss", "1.5"]


def test_gif_path_becomes_a_wandb_video(tmp_path: Path) -> None:
    import imageio.v3 as iio

    gif = tmp_path / "best_episode.gif"
    iio.imwrite(gif, np.zeros((3, 8, 8, 3), dtype=np.uint8), extension=".gif")
    run = FakeRun()
    WandbOutputFormat(run).write({"eval/best_game": gif}, {"eval/best_game": ("csv",)}, step=1)
    assert isinstance(run.rows[0][0]["eval/best_game"], wandb.Video)
