"""Weights & Biases for one run: mode, naming, grouping, and the SB3-logger -> W&B bridge.

Every metric goes through SB3's logger, which writes ``progress.csv`` in the run dir and,
through :class:`WandbOutputFormat`, the same keys under the same names to W&B. W&B's own SB3
callback routes metrics through TensorBoard files instead (another dependency and a second
copy of every number), so the bridge is SB3's documented extension point, a ``KVWriter``.
"""

from __future__ import annotations

import csv
import netrc
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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

from experiments.errors import ConfigError, require_one_of

DEFAULT_WANDB_HOST = "https://api.wandb.ai"
_BACKENDS = ("wandb", "none")
_WANDB_MODES = ("online", "offline", "disabled", "shared")


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


def _has_wandb_credentials() -> bool:
    """True when the user has logged in (``wandb login``) or exported an API key."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)).hostname
    path = Path(os.environ.get("NETRC", "~/.netrc")).expanduser()
    try:
        return host is not None and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


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
    csv_path = run_dir / "progress.csv"
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
    run = wandb.init(
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        group=run_group(cfg, sweep_name),
        job_type=cfg.algo.name,
        name=run_name(cfg),
        tags=[cfg.env.name, cfg.algo.name, *cfg.logger.tags],
        config=flatten(config),
        dir=str(run_dir),
        mode=wandb_mode(cfg.logger.mode),  # type: ignore[arg-type]
        reinit="create_new",
        id=run_id,
        resume="allow" if run_id else None,
    )
    exit_code = 1
    try:
        yield run
        write_summary(run, run_dir / "evaluations.csv")
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


#: Summary columns of a run, so that W&B's runs table compares the runs of a sweep by itself.
SUMMARY_KEYS = ("eval/final_mean_reward", "eval/best_mean_reward", "eval/mean_of_evaluations")


def write_summary(run: Any, evaluations_csv: Path) -> None:
    """Final, best and average evaluation mean as run summary values.

    W&B's default summary is each key's last logged value; these three say how a run ended,
    its peak (an unstable learner shows a high best and a low final) and its area under the
    learning curve (how fast it learned).
    """
    if not evaluations_csv.is_file():
        return
    with evaluations_csv.open() as file:
        means = [float(row["mean_reward"]) for row in csv.DictReader(file)]
    if means:
        values = (means[-1], max(means), float(np.mean(means)))
        for key, value in zip(SUMMARY_KEYS, values, strict=True):
            run.summary[key] = value
