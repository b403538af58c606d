"""``train(cfg)``: build the envs and the algorithm, learn, evaluate, save, finish tracking."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from custom.callbacks import PeriodicEvaluation, TrainingStats
from experiments.algos import build_model
from experiments.config import validate
from experiments.envs import make_env
from experiments.tracking import make_logger, tracking


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


def train(cfg: DictConfig, run_dir: Path | None = None) -> Path:
    """Train the agent that ``cfg`` describes and return its run dir.

    :param cfg: the composed config (see ``conf/`` and ``experiments/config.py``).
    :param run_dir: where to write; by default the run dir Hydra made for this job.
    :raises ConfigError: for a value outside what is allowed, before any work starts.
    """
    validate(cfg)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    sweep_name = None
    if run_dir is None:
        run_dir, sweep_name = _hydra_dirs()
    run_dir.mkdir(parents=True, exist_ok=True)

    env = make_env(cfg, training=True)
    eval_env = make_env(cfg, training=False)
    try:
        model = build_model(cfg, env)
        with tracking(cfg, run_dir, sweep_name) as run:
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
                callback=[TrainingStats(cfg.stats_freq), evaluation],
                log_interval=cfg.log_interval,
                progress_bar=cfg.progress_bar,
            )
            model.save(run_dir / "model.zip")
    finally:
        env.close()
        eval_env.close()

    scores = evaluation.last_scores
    if scores is not None:
        print(
            f"final evaluation: {scores.mean():.3f} +/- {scores.std():.3f} over "
            f"{len(scores)} episodes; run dir: {run_dir}"
        )
    return run_dir
