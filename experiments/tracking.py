"""Weights & Biases for one run: mode, naming, grouping, and the SB3-logger -> W&B bridge.

Every metric goes through SB3's logger, which writes ``progress.csv`` in the run dir and,
through :class:`WandbOutputFormat`, the same keys under the same names to W&B. W&B's own SB3
callback routes metrics through TensorBoard files instead (another dependency and a second
copy of every number), so the bridge is SB3's documented extension point, a ``KVWriter``.
"""

from __future__ import annotations

import os
import shutil
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import wandb
from omegaconf import DictConfig
from stable_baselines3.common.logger import (
    CSVOutputFormat,
    Figure,
    HumanOutputFormat,
    Image,
    KVWriter,
    Logger,
    Video,
)
from wandb.sdk.lib.wbauth import wbnetrc

from experiments.errors import ConfigError, first_line, require_one_of
from experiments.run_dir import RunDir

_BACKENDS = ("wandb", "none")
_WANDB_MODES = ("online", "offline", "disabled", "shared")
#: Modes in which ``wandb.init`` talks to the server before it returns.
_NETWORK_MODES = ("online", "shared")
#: Seconds the server may take to answer the reachability probe, name lookup included: well
#: inside the time a user waits for a run to start, and far longer than a reachable server needs.
PROBE_TIMEOUT_S = 8.0
#: What to do instead, the end of every "cannot reach W&B" line.
OFFLINE_HINT = (
    "run offline with logger.mode=offline (or WANDB_MODE=offline) and upload later with "
    "`wandb sync RUN_DIR/wandb/offline-run-*`"
)
#: What ``wandb.init`` raises when the server is unreachable, slow, or refuses the credentials.
_INIT_ERRORS = (wandb.errors.CommError, wandb.errors.AuthenticationError, wandb.errors.UsageError)


def check_logger(logger: DictConfig) -> None:
    """Refuse, as one line, what W&B would refuse later: a bad mode or project name.

    The project name goes through W&B's own validation (``wandb.Settings``), so the rules are
    W&B's, not a copy of them.
    """
    require_one_of("logger.backend", logger.backend, _BACKENDS)
    if logger.backend != "wandb":
        return
    if logger.mode is not None:
        require_one_of("logger.mode", logger.mode, _WANDB_MODES)
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode is not None and env_mode not in _WANDB_MODES:
        raise ConfigError(
            f"the environment variable WANDB_MODE={env_mode!r}",
            f"unset it or use one of {', '.join(_WANDB_MODES)}",
        )
    if not logger.project:
        raise ConfigError("logger.project", "must not be empty")
    try:
        wandb.Settings(project=logger.project, entity=logger.entity)
    except (wandb.Error, ValueError) as error:
        raise ConfigError(f"logger.project={logger.project}", str(error)) from None
    check_server(logger.mode)


def check_server(requested: str | None, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """In online mode, refuse a W&B server that cannot be reached, as one line, before any run.

    Unchecked, ``wandb.init`` on a compute node without a network waits out its own timeout
    (90 s) and then raises, after the run dir exists. The probe takes about ``timeout_s`` at
    most (a name lookup that hangs: a second more).

    :param requested: ``logger.mode`` as configured (None: W&B's own choice, see
        :func:`wandb_mode`)
    :param timeout_s: seconds the server may take to answer
    """
    mode = wandb_mode(requested)
    if mode not in _NETWORK_MODES:
        return
    base_url = wandb_settings().base_url
    problem = server_problem(base_url, timeout_s)
    if problem is not None:
        raise ConfigError(
            f"W&B {mode} mode ({_mode_source(requested)})",
            f"cannot reach {base_url}: {problem}; {OFFLINE_HINT}",
        )


def _mode_source(requested: str | None) -> str:
    """Why the run is online: what the user set, in the words they set it with."""
    if requested:
        return f"logger.mode={requested}"
    if os.environ.get("WANDB_MODE"):
        return f"WANDB_MODE={os.environ['WANDB_MODE']}"
    return "W&B credentials found: wandb login or WANDB_API_KEY"


def server_problem(base_url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why nothing answers at ``base_url`` within ``timeout_s`` seconds; None when something does.

    Any HTTP answer, an error status included, and any TLS answer, an untrusted certificate
    included, count as reachable: the probe asks whether the host is there, W&B itself checks
    the rest. The request honours the ``*_proxy`` variables, as W&B does. It runs in a daemon
    thread so that a name lookup, which no socket timeout bounds, cannot hold the run either.
    """
    outcome: list[str | None] = []

    def probe() -> None:
        request = urllib.request.Request(base_url, method="HEAD")
        try:
            urllib.request.urlopen(request, timeout=timeout_s).close()
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)
        except urllib.error.URLError as error:
            tls = isinstance(error.reason, ssl.SSLError | ssl.CertificateError)
            outcome.append(None if tls else str(error.reason))
        except (OSError, ValueError) as error:  # a timeout, a reset, a malformed URL
            outcome.append(str(error) or type(error).__name__)

    thread = threading.Thread(target=probe, name="wandb-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 1.0)  # the socket's own timeout first, when it is what ran out
    return outcome[0] if outcome else f"no answer within {timeout_s:g} s"


def wandb_settings() -> wandb.Settings:
    """W&B's settings as ``wandb.init`` reads them: its settings file, then ``WANDB_*`` variables.

    ``wandb login --host URL`` stores the server in the settings file (``WANDB_CONFIG_DIR/
    settings``, by default ``~/.config/wandb/settings``), as ``wandb.setup`` loads it; read
    afresh on each call, so that a test or a changed ``HOME`` sees its own files.
    """
    settings = wandb.Settings(silent=True)
    config_dir = Path(os.environ.get("WANDB_CONFIG_DIR") or "~/.config/wandb").expanduser()
    settings.settings_system = str(config_dir / "settings")
    settings.update_from_system_settings()
    settings.update_from_env_vars(dict(os.environ))
    return settings


def _has_wandb_credentials() -> bool:
    """True when the user has logged in (``wandb login``) or exported an API key or token file.

    The netrc entry is read by W&B's own reader, for the server W&B would use: ``wandb login``
    writes it under the server's address (``api.forge.coreweave.com`` for W&B's cloud since
    wandb 0.2x, ``host:port`` for a local server) into ``NETRC``, ``~/.netrc`` or ``~/_netrc``.
    A key of the wrong form counts as a login: online, ``wandb.init`` then says what is wrong.
    """
    if os.environ.get("WANDB_API_KEY"):
        return True
    settings = wandb_settings()
    if settings.api_key or settings.identity_token_file:
        return True
    try:
        return wbnetrc.read_netrc_auth(host=settings.base_url) is not None
    except wandb.errors.AuthenticationError:
        return True


def wandb_mode(requested: str | None) -> str:
    """Offline unless the user opted in: an explicit mode, ``WANDB_MODE``, or a login."""
    if requested:
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if _has_wandb_credentials() else "offline"


def run_name(cfg: DictConfig, now: datetime | None = None) -> str:
    """``{env}__{algo}__{seed}__{time}``, CleanRL's convention."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return f"{cfg.env.name}__{cfg.algo.name}__{cfg.seed}__{stamp}"


def run_group(cfg: DictConfig, sweep_name: str | None = None) -> str:
    """The W&B group: explicit, else the experiment preset, else the sweep, else the env."""
    return str(cfg.logger.group or cfg.experiment_name or sweep_name or cfg.env.name)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, so every config value is a filterable column."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _to_wandb(value: Any) -> Any:
    """An SB3 logger value as W&B takes it, or None for what W&B cannot show."""
    if isinstance(value, bool | int | float | np.number):
        return value
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else wandb.Histogram(value.ravel().tolist())
    if isinstance(value, Path) and value.suffix == ".gif":
        return wandb.Video(str(value), format="gif")
    if isinstance(value, Video):
        frames = (
            value.frames.detach().cpu().numpy() if torch.is_tensor(value.frames) else value.frames
        )
        return wandb.Video(np.asarray(frames).squeeze(0), fps=int(value.fps), format="gif")
    if isinstance(value, Image):
        return wandb.Image(value.image)
    if isinstance(value, Figure):
        return wandb.Image(value.figure)
    return None


class WandbOutputFormat(KVWriter):
    """SB3 logger output that sends each dumped row to a W&B run at step ``num_timesteps``."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def write(
        self,
        key_values: dict[str, Any],
        key_excluded: dict[str, tuple[str, ...]],
        step: int = 0,
    ) -> None:
        row = {}
        for key, value in key_values.items():
            excluded = key_excluded.get(key) or ()
            converted = None if "wandb" in excluded else _to_wandb(value)
            if converted is not None:
                row[key] = converted
        if row:
            self.run.log(row, step=step)

    def close(self) -> None:
        """The run itself is finished by :func:`tracking`."""


class AppendingCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV output continuing an existing file (a resumed run) instead of truncating it."""

    def __init__(self, filename: str) -> None:
        self.file = open(filename, "r+")  # noqa: SIM115 (SB3's writer keeps it open)
        header = self.file.readline().rstrip("\n")
        self.keys = header.split(",") if header else []
        self.file.seek(0, os.SEEK_END)
        self.separator = ","
        self.quotechar = '"'


def make_logger(run_dir: Path, run: Any | None, verbose: int = 0, append: bool = False) -> Logger:
    """SB3 logger writing ``progress.csv`` in ``run_dir``, W&B when ``run``, stdout if verbose.

    ``append`` continues an existing ``progress.csv`` (a resumed run).
    """
    csv_path = RunDir(run_dir).progress_path
    csv_format = AppendingCSVOutputFormat if append and csv_path.is_file() else CSVOutputFormat
    outputs: list[KVWriter] = [csv_format(str(csv_path))]
    if run is not None:
        outputs.append(WandbOutputFormat(run))
    if verbose > 0:
        outputs.append(HumanOutputFormat(sys.stdout))
    return Logger(folder=str(run_dir), output_formats=outputs)


@contextmanager
def tracking(
    cfg: DictConfig,
    config: Mapping[str, Any],
    run_dir: Path,
    sweep_name: str | None = None,
    run_id: str | None = None,
) -> Iterator[Any]:
    """One W&B run around the body, always finished, also when the body raises.

    ``reinit="create_new"`` gives each job of a multirun its own run, even when a launcher
    runs several jobs in one process. Yields None when ``logger.backend`` is ``none``.

    :param cfg: the run's config (names, group, logger settings)
    :param config: what W&B records as the run's config, flattened into filterable columns
    :param run_dir: the W&B files go into ``run_dir/wandb``
    :param sweep_name: the sweep this run belongs to, the default group
    :param run_id: continue this W&B run (``resume="allow"``: also offline, where W&B cannot
        check that it exists); its id is saved in each checkpoint
    """
    if cfg.logger.backend == "none":
        yield None
        return
    run = _init(cfg, config, run_dir, sweep_name, run_id)
    exit_code = 1
    try:
        yield run
        write_summary(run, run_dir)
        exit_code = 0
    except SystemExit as stop:  # a stop on a signal: finished with its exit status
        exit_code = stop.code if isinstance(stop.code, int) else 1
        if exit_code in (130, 143):
            run.mark_preempting()
        raise
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once
        exit_code = 130
        raise
    finally:
        run.finish(exit_code=exit_code)


def _init(
    cfg: DictConfig,
    config: Mapping[str, Any],
    run_dir: Path,
    sweep_name: str | None,
    run_id: str | None,
) -> Any:
    """``wandb.init`` for this run; a server that fails it is one line, and leaves no files.

    :raises ConfigError: the server could not be reached in time, or refused the credentials
        (the probe of :func:`check_server` passed, so this is rare: a server that answers but
        hangs); ``run_dir/wandb`` is removed again when this call created it.
    """
    wandb_dir = run_dir / "wandb"
    existed = wandb_dir.exists()
    mode = wandb_mode(cfg.logger.mode)
    try:
        return wandb.init(
            project=cfg.logger.project,
            entity=cfg.logger.entity,
            group=run_group(cfg, sweep_name),
            job_type=cfg.algo.name,
            name=run_name(cfg),
            tags=[cfg.env.name, cfg.algo.name, *cfg.logger.tags],
            config=flatten(config),
            dir=str(run_dir),
            mode=mode,  # type: ignore[arg-type]
            reinit="create_new",
            id=run_id,
            resume="allow" if run_id else None,
        )
    except _INIT_ERRORS as error:
        if not existed:
            shutil.rmtree(wandb_dir, ignore_errors=True)
        raise ConfigError(
            f"W&B {mode} mode ({_mode_source(cfg.logger.mode)})",
            f"{first_line(str(error))}; {OFFLINE_HINT}",
        ) from None


#: Summary columns of a run, so that W&B's runs table compares the runs of a sweep by itself.
SUMMARY_KEYS = ("eval/final_mean_reward", "eval/best_mean_reward", "eval/mean_of_evaluations")


def write_summary(run: Any, run_dir: Path) -> None:
    """Final, best and average evaluation mean as run summary values.

    W&B's default summary is each key's last logged value; these three say how a run ended,
    its peak (an unstable learner shows a high best and a low final) and its area under the
    learning curve (how fast it learned).
    """
    means = [evaluation.mean_reward for evaluation in RunDir(run_dir).evaluations()]
    if means:
        values = (means[-1], max(means), float(np.mean(means)))
        for key, value in zip(SUMMARY_KEYS, values, strict=True):
            run.summary[key] = value
