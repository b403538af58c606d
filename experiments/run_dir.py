"""The one owner of a run dir: its file names and columns, its config, results, status and lock.

Every other module reads and names a run's files through :class:`RunDir`, so what a run dir
holds is written down once::

    config.yaml         the effective config: written when training starts and rewritten by
                        every resume (``.hydra/config.yaml`` is Hydra's record of the command
                        that made the dir, and Hydra rewrites it when a sweep is re-run)
    status.json         running / finished / interrupted / failed, at which step, by which pid
    .lock               held (``flock``) by the one process training in the dir
    evaluations.csv     one row per evaluation (columns: ``custom.callbacks.EVALUATION_FIELDS``)
    games.csv           one row per training game (``custom.callbacks.GAME_FIELDS``)
    progress.csv        every SB3 logger key
    model.zip           the final model
    checkpoints/        periodic checkpoints (``experiments.checkpoints``)
    job_status.json     a sweep job's outcome (``experiments.sweeps``); traceback.txt beside it
    run.log             the run's log lines

A status says ``running`` only while its process holds the lock: a run whose process was
killed (SIGKILL, the OOM killer, a lost node) reads as ``interrupted``.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from custom.callbacks import EVALUATION_FIELDS
from experiments.errors import ConfigError

CONFIG = "config.yaml"
#: Hydra's own files in a run dir: its record of the launch (config, overrides, choices).
HYDRA_DIR = ".hydra"
HYDRA_CONFIG = Path(HYDRA_DIR) / "config.yaml"
HYDRA_RECORD = Path(HYDRA_DIR) / "hydra.yaml"
STATUS = "status.json"
LOCK = ".lock"
EVALUATIONS = "evaluations.csv"
GAMES = "games.csv"
PROGRESS = "progress.csv"
MODEL = "model.zip"
CHECKPOINTS = "checkpoints"
#: A checkpoint is ``checkpoints/step_<N>/`` holding these (``experiments.checkpoints`` writes it).
CHECKPOINT_PREFIX = "step_"
CHECKPOINT_MODEL, CHECKPOINT_RNG, CHECKPOINT_CONFIG = "model.zip", "rng.pkl", "config.yaml"
CHECKPOINT_STATE, CHECKPOINT_REPLAY = "state.json", "replay.pkl"
JOB_STATUS = "job_status.json"
TRACEBACK = "traceback.txt"
RUN_LOG = "run.log"
BEST_GIF = "best_episode.gif"

#: The CSV files that grow with training, in the order a checkpoint records their rows.
CSV_FILES = (PROGRESS, EVALUATIONS, GAMES)
STEPS_COLUMN = EVALUATION_FIELDS[0]
MEAN_COLUMN = "mean_reward"
SCORES_COLUMN = "scores"

#: The keys a config needs for a run to be read (compared, resumed, evaluated).
REQUIRED_KEYS = ("env.name", "env.id", "algo.name", "seed", "total_timesteps")

Status = Literal["running", "finished", "interrupted", "failed"]


class NotARun(ConfigError):
    """A dir that is not a (readable) run dir; the message says why in a few words."""


class RunDirBusy(ConfigError):
    """Another live process is training in the run dir."""


@dataclass(frozen=True)
class Evaluation:
    """One row of ``evaluations.csv``: the step and the mean score (the rest by name)."""

    timesteps: int
    mean_reward: float


@dataclass(frozen=True)
class RunStatus:
    """``status.json``: what the run's process last said about itself.

    :param status: ``running`` (only while its process holds the lock), ``finished``,
        ``interrupted`` (a signal, or a process that died without a word) or ``failed``
    :param step: env steps trained when it was written
    :param total_timesteps: the budget it trains to
    :param detail: why it stopped or failed, one line ('' otherwise)
    :param pid: the process that wrote it
    :param host: the machine it ran on
    :param time: when, in seconds since the epoch
    """

    status: Status
    step: int
    total_timesteps: int
    detail: str = ""
    pid: int = 0
    host: str = ""
    time: float = 0.0


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a kill) never sees half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunDir:
    """A run dir, by path: where each file is, and how to read and write what it holds.

    :param path: the run dir (it need not exist yet)
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str | Path) -> Path:
        return self.path / name

    # -- config ---------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    def has_config(self) -> bool:
        """True when any config of a run is here (ours, a checkpoint's, or Hydra's record)."""
        return self._config_source() is not None

    def _config_source(self) -> Path | None:
        """The effective config: ours, else the latest checkpoint's, else Hydra's (old runs)."""
        if self.config_path.is_file():
            return self.config_path
        checkpoint = self.latest_checkpoint()
        if checkpoint is not None and (checkpoint / CHECKPOINT_CONFIG).is_file():
            return checkpoint / CHECKPOINT_CONFIG
        hydra = self.path / HYDRA_CONFIG
        return hydra if hydra.is_file() else None

    def config(self) -> DictConfig:
        """The run's effective config: what it trains (or trained) with, resumes included.

        :raises NotARun: when there is none, or it is unreadable or lacks a required key
        """
        source = self._config_source()
        if source is None:
            raise NotARun(str(self.path), f"not a run dir: it has no {CONFIG} nor {HYDRA_CONFIG}")
        try:
            cfg = OmegaConf.load(source)
        # yaml's errors (a truncated or hand-broken file) are no ValueError: named here too.
        except (OSError, OmegaConfBaseException, ValueError, yaml.YAMLError) as error:
            raise NotARun(str(source), f"unreadable ({type(error).__name__})") from None
        if not isinstance(cfg, DictConfig):
            raise NotARun(str(source), "not a run config")
        for key in REQUIRED_KEYS:
            if OmegaConf.select(cfg, key, default=None) is None:
                raise NotARun(str(source), f"not a run config: it has no {key}")
        return cfg

    def write_config(self, cfg: DictConfig) -> None:
        """Save ``cfg`` (resolved) as the run's effective config, atomically."""
        self.path.mkdir(parents=True, exist_ok=True)
        resolved = OmegaConf.to_container(cfg, resolve=True)
        _atomic_write(self.config_path, OmegaConf.to_yaml(resolved))

    # -- results --------------------------------------------------------------------------

    @property
    def evaluations_path(self) -> Path:
        return self.path / EVALUATIONS

    @property
    def games_path(self) -> Path:
        return self.path / GAMES

    @property
    def progress_path(self) -> Path:
        return self.path / PROGRESS

    @property
    def model_path(self) -> Path:
        return self.path / MODEL

    @property
    def gif_path(self) -> Path:
        return self.path / BEST_GIF

    @property
    def checkpoints_path(self) -> Path:
        return self.path / CHECKPOINTS

    def rows(self, name: str) -> list[dict[str, str]]:
        """Every row of one of the run's CSV files (:data:`CSV_FILES`) as text by column (empty
        when the file is not there yet)."""
        if name not in CSV_FILES:
            raise ValueError(f"{name} is not one of the run dir's CSV files {CSV_FILES}")
        path = self.path / name
        if not path.is_file():
            return []
        with path.open(newline="") as file:
            return list(csv.DictReader(file))

    def evaluation_rows(self) -> list[dict[str, str]]:
        """Every row of ``evaluations.csv`` as text by column (empty when there is none)."""
        return self.rows(EVALUATIONS)

    def logged_steps(self) -> list[int]:
        """The env step of every ``progress.csv`` row that logged one, in the order logged."""
        column = "time/total_timesteps"
        return [int(float(r[column])) for r in self.rows(PROGRESS) if r.get(column)]

    def evaluations(self) -> list[Evaluation]:
        """``(timesteps, mean_reward)`` of every evaluation, in the order they were made."""
        return [
            Evaluation(int(row[STEPS_COLUMN]), float(row[MEAN_COLUMN]))
            for row in self.evaluation_rows()
        ]

    def final_mean(self) -> float | None:
        """The last evaluation's mean: what a run reports and ``hparams_search`` maximises."""
        rows = self.evaluations()
        return rows[-1].mean_reward if rows else None

    def checkpoints(self) -> list[Path]:
        """The checkpoint folders, oldest first (temporary ones left by a kill are skipped)."""
        root = self.checkpoints_path
        if not root.is_dir():
            return []
        found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)]
        return sorted(found, key=lambda p: p.name)

    def latest_checkpoint(self) -> Path | None:
        """The newest checkpoint folder, or None."""
        found = self.checkpoints()
        return found[-1] if found else None

    # -- status ---------------------------------------------------------------------------

    @property
    def status_path(self) -> Path:
        return self.path / STATUS

    def write_status(
        self, status: Status, step: int, total_timesteps: int, detail: str = ""
    ) -> None:
        """Record what this process is doing to the run (atomically)."""
        record = RunStatus(
            status=status,
            step=int(step),
            total_timesteps=int(total_timesteps),
            detail=detail,
            pid=os.getpid(),
            host=socket.gethostname(),
            time=time.time(),
        )
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.status_path, json.dumps(asdict(record), indent=1) + "\n")

    def status(self) -> RunStatus | None:
        """The run's status; ``running`` only while a live process holds the lock.

        None for a dir without ``status.json`` (a run from before it existed, or not a run).
        """
        try:
            record = RunStatus(**json.loads(self.status_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if record.status == "running" and self.lock_holder() is None:
            detail = (
                "its process ended without a word (killed: SIGKILL, the OOM killer, a lost node)"
            )
            return RunStatus(**{**asdict(record), "status": "interrupted", "detail": detail})
        return record

    def is_finished(self) -> bool:
        """Trained to its budget, with its model saved, by the run dir's own record.

        A run from before ``status.json`` existed counts as finished when it has ``model.zip``
        and an evaluation at (or past) the ``total_timesteps`` of its effective config.
        """
        if not self.model_path.is_file():
            return False
        status = self.status()
        if status is not None:
            return status.status == "finished" and status.step >= status.total_timesteps
        try:
            total = int(self.config().total_timesteps)
        except NotARun:
            return False
        rows = self.evaluations()
        return bool(rows) and rows[-1].timesteps >= total

    # -- lock -----------------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    def lock_holder(self) -> str | None:
        """``pid N on HOST`` of the live process training here, or None when none is."""
        if self._lock_fd is not None:
            return f"pid {os.getpid()} on {socket.gethostname()} (this process)"
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return os.read(fd, 200).decode(errors="replace").strip() or "another process"
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def acquire(self) -> None:
        """Take the run dir's exclusive lock for this process.

        A lock left by a dead process is free (the kernel drops ``flock`` locks with their
        process), so it is simply taken over.

        :raises RunDirBusy: naming the live holder's pid and host
        """
        if self._lock_fd is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunDirBusy(
                str(self.path),
                f"{holder} is training in this run dir; wait for it to end or stop it "
                "(Ctrl-C or kill -TERM <pid>), then resume",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self._lock_fd = fd

    def release(self) -> None:
        """Let go of the lock (closing the file releases it)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[RunDir]:
        """Hold the exclusive lock inside the block (see :meth:`acquire`)."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()


def config_differences(
    old: DictConfig, new: DictConfig, ignore: tuple[str, ...] = ()
) -> dict[str, tuple[Any, Any]]:
    """``key -> (old, new)`` for every leaf that differs between two configs, dotted keys.

    :param ignore: top-level or dotted keys to leave out (e.g. ``resume``, ``torch_threads``)
    """

    def leaves(cfg: DictConfig) -> dict[str, Any]:
        container = OmegaConf.to_container(cfg, resolve=True)
        flat: dict[str, Any] = {}

        def walk(node: Any, prefix: str) -> None:
            if isinstance(node, dict) and node:
                for key, value in node.items():
                    walk(value, f"{prefix}{key}.")
            else:
                flat[prefix[:-1]] = node

        walk(container, "")
        return flat

    before, after = leaves(old), leaves(new)
    differences = {}
    for key in sorted(before.keys() | after.keys()):
        if any(key == skip or key.startswith(f"{skip}.") for skip in ignore):
            continue
        if before.get(key) != after.get(key):
            differences[key] = (before.get(key), after.get(key))
    return differences
