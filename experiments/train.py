"""``train(cfg)``: check, build the envs and the model, learn, evaluate, save, finish tracking."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from custom.callbacks import PeriodicEvaluation, TrainingStats
from experiments.algos import build_model
from experiments.config import run_config, validate
from experiments.envs import make_env
from experiments.errors import ConfigError
from experiments.tracking import make_logger, tracking

log = logging.getLogger(__name__)

#: What Hydra writes into a job's dir before the task starts: a dir holding only these was made
#: for this job and holds nothing of value yet.
_HYDRA_FILES = {".hydra", "run.log"}


def _hydra_dirs() -> tuple[Path, str | None]:
    """The run dir Hydra made for this job, and the sweep's name when this is a multirun.

    The sweep's name is its dir's last two parts (``multirun/DATE/TIME`` -> ``DATE_TIME``): the
    W&B group that gathers the sweep's jobs.
    """
    hydra_cfg = HydraConfig.get()
    sweep = None
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep = "_".join(Path(hydra_cfg.sweep.dir).parts[-2:])
    return Path(hydra_cfg.runtime.output_dir), sweep


def _remove_if_fresh(run_dir: Path) -> None:
    """Delete a run dir that holds only what Hydra wrote for this job (never a run's results)."""
    if run_dir.is_dir() and {path.name for path in run_dir.iterdir()} <= _HYDRA_FILES:
        shutil.rmtree(run_dir, ignore_errors=True)


def _make_env(cfg: DictConfig, training: bool) -> VecEnv:
    """:func:`make_env`, with what gymnasium refuses in the env's config as a one-line error."""
    try:
        return make_env(cfg, training=training)
    except (gym.error.Error, TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(
            f"env={cfg.env.name} ({cfg.env.id})", f"cannot be made from this config: {error}"
        ) from error


def _build(cfg: DictConfig) -> tuple[VecEnv, VecEnv, BaseAlgorithm]:
    """Check ``cfg`` and build the training env, the evaluation env and the model."""
    validate(cfg)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    env = _make_env(cfg, training=True)
    eval_env = None
    try:
        eval_env = _make_env(cfg, training=False)
        return env, eval_env, build_model(cfg, env)
    except BaseException:
        env.close()
        if eval_env is not None:
            eval_env.close()
        raise


def train(
    cfg: DictConfig, run_dir: Path | None = None, callbacks: Sequence[BaseCallback] = ()
) -> Path:
    """Train the agent that ``cfg`` describes and return its run dir.

    :param cfg: the composed config (see ``conf/`` and ``experiments/config.py``).
    :param run_dir: where to write; by default the run dir Hydra made for this job.
    :param callbacks: more SB3 callbacks, called after the evaluation (a sweep's pruning).
    :raises ConfigError: for a value outside what is allowed, before any training, W&B run or
        result file exists; the dir Hydra made for the job is removed again.
    """
    sweep_name = None
    if run_dir is None:
        run_dir, sweep_name = _hydra_dirs()
        try:
            env, eval_env, model = _build(cfg)
        except ConfigError:
            _remove_if_fresh(run_dir)
            raise
    else:
        env, eval_env, model = _build(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)

    try:
        with tracking(cfg, run_config(cfg), run_dir, sweep_name) as run:
            model.set_logger(make_logger(run_dir, run, cfg.verbose))
            evaluation = PeriodicEvaluation(
                eval_env,
                csv_path=run_dir / "evaluations.csv",
                freq=cfg.eval.freq,
                episodes=cfg.eval.episodes,
                final_episodes=cfg.eval.final_episodes,
                epsilon=cfg.eval.epsilon,
                gif_path=run_dir / "best_episode.gif" if cfg.eval.gif else None,
                progress_bar=cfg.progress_bar,
                verbose=cfg.verbose,
            )
            model.learn(
                total_timesteps=cfg.total_timesteps,
                callback=[TrainingStats(cfg.stats_freq), evaluation, *callbacks],
                log_interval=cfg.log_interval,
                progress_bar=cfg.progress_bar,
            )
            model.save(run_dir / "model.zip")
    finally:
        env.close()
        eval_env.close()

    scores = evaluation.last_scores
    if scores is not None:
        log.info(
            f"final evaluation: {scores.mean():.3f} +/- {scores.std():.3f} over "
            f"{len(scores)} episodes; run dir: {run_dir}"
        )
    return run_dir
