"""The run dir's state: atomic checkpoints, and what ``python run.py resume=RUN_DIR`` restores.

A checkpoint is a folder ``RUN_DIR/checkpoints/step_<N>/`` holding

    model.zip     SB3's save: weights, optimizer, num_timesteps (which drives the schedules)
    rng.pkl       Python, NumPy and torch RNG states, and the action space's
    config.yaml   the run's effective config (resume reads it; overrides of a resume land here)
    state.json    step, W&B run id, rows of progress.csv / evaluations.csv / games.csv at that step
    replay.pkl    the replay buffer, with ``checkpoint.replay`` (latest checkpoint only)

It is written into a temporary folder and renamed into place (``os.replace``), so a kill at
any moment leaves either the whole checkpoint or none; the last ``checkpoint.keep`` are kept.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecEnv

from experiments.algos import (
    algo_kwargs,
    algo_spec,
    install_step_schedules,
    resolve_config,
)
from experiments.config import CONF_DIR, run_config
from experiments.errors import ConfigError
from experiments.run_dir import (
    CHECKPOINT_CONFIG as CONFIG,
)
from experiments.run_dir import (
    CHECKPOINT_MODEL as MODEL,
)
from experiments.run_dir import (
    CHECKPOINT_PREFIX,
    CSV_FILES,
    HYDRA_CONFIG,
    HYDRA_RECORD,
    RunDir,
)
from experiments.run_dir import (
    CHECKPOINT_REPLAY as REPLAY,
)
from experiments.run_dir import (
    CHECKPOINT_RNG as RNG,
)
from experiments.run_dir import (
    CHECKPOINT_STATE as STATE,
)

log = logging.getLogger(__name__)

#: Run-level keys a resume may change: how long, how it is evaluated, logged and checkpointed,
#: and where it computes. Everything else shaped the run (env, seed, networks) and is refused.
RESUMABLE_RUN_KEYS = (
    "total_timesteps",
    "eval",
    "checkpoint",
    "logger.mode",
    "logger.tags",
    "device",
    "torch_threads",
    "flush_denormal",
    "progress_bar",
    "log_interval",
    "stats_freq",
    "verbose",
    "stop_on_nan",
)
#: Config groups whose choice decides which blocks a run's config has; a resume composes the
#: run's own choices of them (from Hydra's record of its launch) before the command line's.
RESUME_GROUPS = ("experiment", "env", "algo")


@dataclass
class CheckpointState:
    """``state.json``: what a checkpoint is, beside the files SB3 writes."""

    step: int
    total_timesteps: int
    algo: str
    wandb_id: str | None
    csv_rows: dict[str, int] = field(default_factory=dict)
    replay: bool = False
    finished: bool = False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _csv_rows(path: Path) -> int:
    """Data rows of a CSV file that SB3 or the evaluation callback writes (0 when absent)."""
    if not path.is_file():
        return 0
    with path.open("rb") as file:
        return max(sum(1 for _ in file) - 1, 0)


def rng_states(model: BaseAlgorithm) -> dict[str, Any]:
    """Every RNG a DQN step draws from: Python, NumPy's global one (epsilon), torch, the space."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (SB3 draws epsilon from it)
        "torch": torch.get_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(model: BaseAlgorithm, states: dict[str, Any]) -> None:
    """Put back what :func:`rng_states` saved (CUDA states only where a GPU is present)."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    model.action_space.np_random.bit_generator.state = states["action_space"]
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class Checkpointer:
    """Writes checkpoints of one run into ``run_dir/checkpoints``.

    :param run_dir: the run dir
    :param cfg: the run's effective config, saved in each checkpoint
    :param wandb_id: the W&B run to continue on resume (None without W&B)
    :param keep: how many of the latest checkpoints to keep
    :param replay: also save the replay buffer (only the latest checkpoint keeps it)
    """

    def __init__(
        self, run_dir: Path, cfg: DictConfig, wandb_id: str | None, keep: int, replay: bool
    ) -> None:
        self.run_dir = run_dir
        self.root = RunDir(run_dir).checkpoints_path
        self.cfg = cfg
        self.wandb_id = wandb_id
        self.keep = keep
        self.replay = replay
        #: the last checkpoint written or resumed from
        self.latest: Path | None = RunDir(run_dir).latest_checkpoint()

    def save(self, model: BaseAlgorithm, finished: bool = False) -> Path:
        """Write a checkpoint of ``model`` as it is now; return its folder."""
        step = model.num_timesteps
        target = self.root / f"{CHECKPOINT_PREFIX}{step:012d}"
        tmp = self.root / f".tmp_{target.name}_{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save(tmp / MODEL)
        with_replay = self.replay and isinstance(model, OffPolicyAlgorithm)
        if with_replay:
            model.save_replay_buffer(tmp / REPLAY)  # type: ignore[attr-defined]
        with (tmp / RNG).open("wb") as file:
            pickle.dump(rng_states(model), file)
        OmegaConf.save(OmegaConf.create(run_config(self.cfg)), tmp / CONFIG)
        state = CheckpointState(
            step=step,
            total_timesteps=int(self.cfg.total_timesteps),
            algo=str(self.cfg.algo.name),
            wandb_id=self.wandb_id,
            csv_rows={name: _csv_rows(self.run_dir / name) for name in CSV_FILES},
            replay=with_replay,
            finished=finished,
        )
        (tmp / STATE).write_text(json.dumps(asdict(state), indent=1))
        for path in tmp.iterdir():
            _fsync(path)
        if target.exists():  # the same step again (a stop right at a periodic checkpoint)
            aside = self.root / f".old_{target.name}_{os.getpid()}"
            os.replace(target, aside)
            os.replace(tmp, target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync(self.root)
        self.latest = target
        self._prune(target)
        return target

    def _prune(self, newest: Path) -> None:
        """Keep the last ``keep`` checkpoints, and a replay buffer in the newest one only."""
        for old in RunDir(self.run_dir).checkpoints()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        for path in self.root.glob(f"{CHECKPOINT_PREFIX}*/{REPLAY}"):
            if path.parent != newest:
                path.unlink(missing_ok=True)


def clean_temporary(run_dir: Path) -> None:
    """Remove what a kill left half-written (never a complete checkpoint)."""
    root = RunDir(run_dir).checkpoints_path
    if root.is_dir():
        for path in root.glob(".*_*"):
            shutil.rmtree(path, ignore_errors=True)


def read_state(checkpoint: Path) -> CheckpointState:
    """``state.json`` of a checkpoint; one line when it is missing or damaged."""
    try:
        state = CheckpointState(**json.loads((checkpoint / STATE).read_text()))
    except (OSError, ValueError, TypeError) as error:
        reason = _reason(error)
        raise ConfigError(str(checkpoint), f"not a readable checkpoint ({reason})") from None
    for name in (MODEL, RNG, CONFIG):
        if not (checkpoint / name).is_file():
            raise ConfigError(str(checkpoint), f"damaged checkpoint: {name} is missing")
    return state


_NOT_A_ZIP = "truncated or damaged: not a whole zip file"


def _saved_spaces_misfit(model_path: Path, env: VecEnv) -> str | None:
    """How the spaces saved in ``model_path`` differ from ``env``'s, or None when they match."""
    data, _, _ = load_from_zip_file(model_path, load_data=True, device="cpu")
    for name in ("observation_space", "action_space"):
        saved, wanted = (data or {}).get(name), getattr(env, name)
        if saved is not None and saved != wanted:
            return f"its {name.replace('_', ' ')} is {saved}, the env's {wanted}"
    return None


def _reason(error: BaseException) -> str:
    """The first line of an error, shortened for the usual damage: a truncated file."""
    if isinstance(error, zipfile.BadZipFile):
        return _NOT_A_ZIP
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def run_checkpoint(run_dir_text: str, key: str) -> tuple[Path, Path]:
    """The run dir and its latest checkpoint, or one line saying why there is none.

    :param run_dir_text: the dir as the user typed it
    :param key: how the user named it (``resume=...`` or ``RUN_DIR``), for the error line
    """
    run_dir = Path(run_dir_text).expanduser()
    subject = f"{key}={run_dir_text}" if key != "RUN_DIR" else run_dir_text
    if not run_dir.exists():
        raise ConfigError(subject, "no such directory")
    if not run_dir.is_dir():
        raise ConfigError(subject, "not a directory; give a run dir (outputs/DATE/TIME_...)")
    checkpoint = RunDir(run_dir).latest_checkpoint()
    if checkpoint is None:
        if not RunDir(run_dir).has_config():
            raise ConfigError(subject, f"not a run dir: it has no {HYDRA_CONFIG}")
        raise ConfigError(
            subject, "this run has no checkpoint (it stopped before its first checkpoint.freq)"
        )
    return run_dir, checkpoint


def load_config(checkpoint: Path) -> DictConfig:
    """The effective config saved in a checkpoint."""
    try:
        cfg = OmegaConf.load(checkpoint / CONFIG)
    except (OSError, OmegaConfBaseException, ValueError) as error:
        raise ConfigError(str(checkpoint / CONFIG), f"unreadable ({_reason(error)})") from None
    if not isinstance(cfg, DictConfig) or "algo" not in cfg:
        raise ConfigError(str(checkpoint / CONFIG), "not a run config")
    return cfg


@dataclass
class Resume:
    """What ``resume=RUN_DIR`` continues: where, from which checkpoint, with which config."""

    run_dir: Path
    checkpoint: Path
    state: CheckpointState
    cfg: DictConfig
    #: overridden keys -> (old, new) values, for the log
    changed: dict[str, tuple[Any, Any]]


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def saved_choices(run_dir: Path) -> dict[str, str]:
    """The run's choices of :data:`RESUME_GROUPS` as Hydra recorded them at its launch.

    Empty when the record is missing or unreadable: the resume's own checks then say what is
    wrong with the dir.
    """
    try:
        record = OmegaConf.load(run_dir / HYDRA_RECORD)
        choices = OmegaConf.select(record, "hydra.runtime.choices", default=None) or {}
    except (OSError, OmegaConfBaseException, ValueError):
        return {}
    return {group: str(choices[group]) for group in RESUME_GROUPS if choices.get(group)}


def with_resumed_choices(arguments: Sequence[str]) -> list[str]:
    """``run.py``'s command line with a resumed run's own group choices in front.

    ``python run.py resume=RUN_DIR ppo.ent_coef=0.1`` must be composed as the PPO run it
    continues, not on the default ``algo=dqn``, whose config has no ``ppo`` block. A choice the
    user typed stays theirs (and :func:`prepare_resume` refuses it if it differs).

    :param arguments: ``sys.argv[1:]``
    """
    values = [arg.split("=", 1)[1] for arg in arguments if arg.startswith("resume=")]
    if len(values) != 1 or not values[0].strip():
        return list(arguments)
    typed = {_override_key(arg) for arg in arguments if "=" in arg}
    value = values[0]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":  # Hydra's quoting
        value = value[1:-1].replace('\\"', '"')
    choices = saved_choices(Path(value).expanduser())
    return [f"{g}={c}" for g, c in choices.items() if g not in typed] + list(arguments)


def resumable_keys(cfg: DictConfig) -> list[str]:
    """Every key (or key prefix) that a resume of a run with config ``cfg`` may change."""
    spec = algo_spec(cfg.algo.name)
    return [
        *RESUMABLE_RUN_KEYS,
        *(f"{spec.family}.{name}" for name in spec.resumable),
        *(f"algo.kwargs.{name}" for name in spec.resumable_arguments),
    ]


def _check_resumable(override: str, key: str, saved: DictConfig, choices: dict[str, str]) -> None:
    """Refuse, by name, an override that a resume cannot honour."""
    if "." not in key and (CONF_DIR / key).is_dir():
        value = override.split("=", 1)[1] if "=" in override else ""
        if key in choices and choices[key] == value:
            return  # the run's own choice, put in front by with_resumed_choices
        raise ConfigError(
            override, "a resumed run keeps its config groups; start a new run to change them"
        )
    allowed = resumable_keys(saved)
    if any(key == name or key.startswith(f"{name}.") for name in allowed):
        return
    steps = f"{key.removesuffix('_fraction')}_anneal_steps"
    hint = f" (as env steps at launch): change {steps} instead" if key.endswith("_fraction") else ""
    raise ConfigError(
        override,
        "cannot change when resuming: it shaped what this run built or measured"
        f"{hint}. Resumable: {', '.join(allowed)}",
    )


def prepare_resume(cfg: DictConfig, overrides: list[str]) -> Resume:
    """The saved config of ``cfg.resume``'s latest checkpoint, with the command line's overrides.

    ``cfg`` is what Hydra composed for this command (the run's own group choices, see
    :func:`with_resumed_choices`, plus the overrides); the value of each overridden key is
    taken from it, so Hydra has typed and checked it already. What may change is declared per
    algorithm (``AlgoSpec.resumable``) and per run (:data:`RESUMABLE_RUN_KEYS`); anything
    else is refused by name before any file is touched.

    :param cfg: the composed config of ``python run.py resume=RUN_DIR [key=value ...]``
    :param overrides: the command line's overrides (``HydraConfig``'s ``overrides.task``)
    """
    run_dir, checkpoint = run_checkpoint(str(cfg.resume), "resume")
    state = read_state(checkpoint)
    saved = load_config(checkpoint)
    resolve_config(saved)  # a run saved before its schedules were kept in steps
    choices = saved_choices(run_dir)
    changed: dict[str, tuple[Any, Any]] = {}
    for override in overrides:
        key = _override_key(override)
        if key == "resume":
            continue
        _check_resumable(override, key, saved, choices)
        if "." not in key and (CONF_DIR / key).is_dir():
            continue
        new = OmegaConf.select(cfg, key)
        new = OmegaConf.to_container(new) if OmegaConf.is_config(new) else new
        old = OmegaConf.select(saved, key)
        if new != old:
            OmegaConf.update(saved, key, new, force_add=True)
            changed[key] = (old, new)
    saved.resume = None
    return Resume(run_dir, checkpoint, state, saved, changed)


def truncate_csv(run_dir: Path, rows: dict[str, int]) -> None:
    """Drop the rows logged after the checkpoint, so that resuming logs no step twice.

    Rows are counted, not parsed: SB3's CSV writer may have widened the header since (new
    keys), which changes byte offsets but never the order of rows.
    """
    for name, keep in rows.items():
        path = run_dir / name
        if not path.is_file():
            continue
        with path.open() as file:
            lines = file.readlines()
        if len(lines) <= keep + 1:
            continue
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text("".join(lines[: keep + 1]))
        os.replace(tmp, path)
        dropped = len(lines) - 1 - keep
        log.info(f"resume: dropped {dropped} rows of {name} logged after the checkpoint")


def load_model(
    cfg: DictConfig,
    model_path: Path,
    env: VecEnv | None,
    device: str,
    custom_objects: dict[str, Any] | None = None,
) -> BaseAlgorithm:
    """The run's own class (a softmax run stays softmax) loaded from ``model_path``.

    Re-installs the step-based epsilon schedule that SB3's ``load`` replaces. A damaged file or
    one whose spaces do not fit ``env`` is one line.
    """
    cls = algo_spec(cfg.algo.name).cls
    if model_path.is_file() and not zipfile.is_zipfile(model_path):
        raise ConfigError(str(model_path), f"cannot be loaded ({_NOT_A_ZIP})")
    try:
        model = cls.load(model_path, env=env, device=device, custom_objects=custom_objects)
    except ValueError as error:
        misfit = _saved_spaces_misfit(model_path, env) if env is not None else None
        if misfit is not None:
            raise ConfigError(
                str(model_path), f"does not fit env={cfg.env.name} ({cfg.env.id}): {misfit}"
            ) from None
        raise ConfigError(str(model_path), f"cannot be loaded ({_reason(error)})") from None
    except (OSError, zipfile.BadZipFile, KeyError, EOFError, RuntimeError, TypeError) as error:
        raise ConfigError(str(model_path), f"cannot be loaded ({_reason(error)})") from None
    install_step_schedules(cfg, model)
    return model


def resumed_model(resume: Resume, env: VecEnv) -> BaseAlgorithm:
    """The checkpoint's model on ``env``, with the overridden hyperparameters and its RNGs.

    The replay buffer is restored when the checkpoint has one; otherwise a warning says that
    learning restarts from an empty replay.
    """
    cfg, checkpoint = resume.cfg, resume.checkpoint
    custom = _custom_objects(cfg, resume.changed)
    try:
        model = load_model(cfg, checkpoint / MODEL, env, str(cfg.device), custom)
    except ConfigError as error:
        older = RunDir(resume.run_dir).checkpoints()[:-1]
        if not older:
            raise
        hint = f"; delete {checkpoint} to resume from {older[-1].name}"
        raise ConfigError(str(checkpoint / MODEL), str(error).split(": ", 1)[1] + hint) from None
    try:
        with (checkpoint / RNG).open("rb") as file:
            set_rng_states(model, pickle.load(file))
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as error:
        raise ConfigError(str(checkpoint / RNG), f"damaged ({_reason(error)})") from None
    if isinstance(model, OffPolicyAlgorithm):
        if (checkpoint / REPLAY).is_file():
            try:
                model.load_replay_buffer(checkpoint / REPLAY)
            except (OSError, pickle.UnpicklingError, EOFError, ValueError) as error:
                raise ConfigError(str(checkpoint / REPLAY), f"damaged ({_reason(error)})") from None
            log.info(f"resume: replay buffer restored ({model.replay_buffer.size()} transitions)")  # type: ignore[union-attr]
        else:
            # Sampling an empty buffer fails: refill it for learning_starts steps first.
            model.learning_starts = model.num_timesteps + int(cfg.dqn.learning_starts)
            log.warning(
                "resume: this checkpoint has no replay buffer (checkpoint.replay=false): "
                f"refilling it with {cfg.dqn.learning_starts} random steps before learning again"
            )
    return model


def _custom_objects(cfg: DictConfig, changed: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """SB3 ``load``'s ``custom_objects``: the changed keys that are constructor arguments.

    Our own keys (schedules) are not: :func:`experiments.algos.install_step_schedules` sets
    them again from the config after loading.
    """
    spec = algo_spec(cfg.algo.name)
    kwargs = algo_kwargs(cfg)
    custom: dict[str, Any] = {}
    for key in changed:
        family, _, name = key.partition(".")
        if family == spec.family and name in kwargs:
            custom[name] = kwargs[name]
        if key.startswith("algo.kwargs."):
            argument = key.removeprefix("algo.kwargs.")
            custom[argument] = kwargs[argument]
    return custom
