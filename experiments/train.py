"""``train(cfg)``: check, build the envs and the model (or resume one), learn with checkpoints,
evaluate, save, finish tracking; Ctrl-C and SIGTERM stop with a checkpoint."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import gymnasium as gym
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from custom.callbacks import (
    PeriodicEvaluation,
    ProgressBar,
    StopOnNonFinite,
    TrainingGames,
    TrainingStats,
)
from custom.checkpointing import PeriodicCheckpoint, StopOnSignal
from custom.evaluation import rgb_frames_problem
from experiments.algos import build_model, resolve_config
from experiments.checkpoints import (
    Checkpointer,
    Resume,
    clean_temporary,
    prepare_resume,
    resumed_model,
    truncate_csv,
)
from experiments.config import config_warnings, effective_config, run_config, validate
from experiments.envs import make_env
from experiments.errors import ConfigError, shell_override
from experiments.run_dir import HYDRA_DIR, RUN_LOG, RunDir
from experiments.tracking import make_logger, tracking

log = logging.getLogger(__name__)

#: What Hydra writes into a job's dir before the task starts: a dir holding only these was made
#: for this job and holds nothing of value yet.
_HYDRA_FILES = {HYDRA_DIR, RUN_LOG}


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
    """Delete a run dir that holds only what Hydra wrote for this job (never a run's results).

    Its parent (``outputs/DATE``) goes too when that leaves it empty, and so does the default
    ``outputs`` folder above it: a refused command leaves nothing behind.
    """
    if run_dir.is_dir() and {path.name for path in run_dir.iterdir()} <= _HYDRA_FILES:
        shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # not empty: other runs of the day
            run_dir.parent.rmdir()
            if run_dir.parent.parent.name == "outputs":  # conf/config.yaml's hydra.run.dir
                run_dir.parent.parent.rmdir()


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


def build(cfg: DictConfig) -> tuple[VecEnv, VecEnv, BaseAlgorithm]:
    """Check ``cfg`` and build the training env, the evaluation env and the model.

    What ``run.py`` trains, for scripts and benchmarks that want the same objects.
    """
    validate(cfg)
    resolve_config(cfg)
    for warning in config_warnings(cfg):
        log.warning(f"WARNING: {warning}")
    return _envs_and_model(cfg, build_model)


def _envs_and_model(
    cfg: DictConfig, make_model: Callable[[DictConfig, VecEnv], BaseAlgorithm]
) -> tuple[VecEnv, VecEnv, BaseAlgorithm]:
    """The training env, the evaluation env and ``make_model(cfg, env)``; no env left open."""
    # Before torch's first parallel op: its CPU threads inherit the mode when they are created.
    # A config saved before the key existed gets the default.
    torch.set_flush_denormal(bool(cfg.get("flush_denormal", True)))
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.eval.gif:
        _check_gif(cfg)
    env = _make_env(cfg, training=True)
    eval_env = None
    try:
        eval_env = _make_env(cfg, training=False)
        return env, eval_env, make_model(cfg, env)
    except BaseException:
        env.close()
        if eval_env is not None:
            eval_env.close()
        raise


def _check_gif(cfg: DictConfig) -> None:
    """``eval.gif=true`` on an env that cannot render frames fails now, not after training."""
    problem = rgb_frames_problem(lambda: _make_env(cfg, training=False))
    if problem is not None:
        raise ConfigError(
            "eval.gif=true", f"this env cannot film its games: {problem}; or use eval.gif=false"
        )


class AlreadyFinished(Exception):
    """The run to resume already reached its ``total_timesteps``."""

    def __init__(self, resume: Resume) -> None:
        super().__init__(str(resume.run_dir))
        self.resume = resume


def _task_overrides() -> list[str]:
    """The command line's config overrides (not Hydra's own ``hydra.*`` ones)."""
    return list(HydraConfig.get().overrides.task)


def _move_log_file(fresh_dir: Path, run_dir: Path) -> None:
    """Point the job's ``run.log`` handler at the resumed run's own ``run.log`` (appending)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not isinstance(handler, logging.FileHandler):
            continue
        if Path(handler.baseFilename).parent == fresh_dir:
            moved = logging.FileHandler(run_dir / Path(handler.baseFilename).name, mode="a")
            moved.setFormatter(handler.formatter)
            moved.setLevel(handler.level)
            root.removeHandler(handler)
            handler.close()
            root.addHandler(moved)


def _resume(
    cfg: DictConfig, overrides: list[str], fresh_dir: Path | None
) -> tuple[Resume, RunDir, VecEnv, VecEnv, BaseAlgorithm]:
    """Check the run to resume and build its envs and its model from the latest checkpoint.

    The run dir's lock is taken before anything in it changes, so a second process resuming
    the same dir stops with one line; it is handed back held (released here on any failure).
    Hydra made a new dir for this command: it is removed, and the log goes to the run's own.
    """
    resume = prepare_resume(cfg, overrides)
    validate(resume.cfg)
    run = RunDir(resume.run_dir)
    run.acquire()
    try:
        if fresh_dir is not None:
            _remove_if_fresh(fresh_dir)
            _move_log_file(fresh_dir, resume.run_dir)
        # Not finished (a stop cut the final evaluation, or a kill came during it): the resume
        # plays the final evaluation and writes model.zip.
        if resume.state.step >= resume.cfg.total_timesteps and resume.state.finished:
            raise AlreadyFinished(resume)

        def restore(cfg: DictConfig, env: VecEnv) -> BaseAlgorithm:
            model = resumed_model(resume, env)
            # New games after the restart rather than the run's first ones again.
            env.seed(int(cfg.seed) + model.num_timesteps)
            return model

        env, eval_env, model = _envs_and_model(resume.cfg, restore)
    except BaseException:
        run.release()
        raise
    return resume, run, env, eval_env, model


def train(
    cfg: DictConfig,
    run_dir: Path | None = None,
    overrides: list[str] | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> Path:
    """Train the agent that ``cfg`` describes, or continue ``cfg.resume``; return the run dir.

    Periodic checkpoints go to ``RUN_DIR/checkpoints``. SIGINT or SIGTERM stops after the
    current env step, writes a checkpoint and exits with 130 or 143; a non-finite loss or
    Q-value stops with one line (the last good state is the last checkpoint).

    :param cfg: the composed config (see ``conf/`` and ``experiments/config.py``).
    :param run_dir: where to write; by default the run dir Hydra made for this job. A resume
        writes into the resumed run's dir.
    :param overrides: the command line's overrides, for a resume (default: Hydra's).
    :param callbacks: more SB3 callbacks, called after the evaluation (a sweep's pruning).
    :raises ConfigError: for a value outside what is allowed, before any training, W&B run or
        result file exists; the dir Hydra made for the job is removed again.
    """
    sweep_name = None
    fresh_dir = None
    if run_dir is None and not (cfg.resume and not HydraConfig.initialized()):
        fresh_dir, sweep_name = _hydra_dirs()
    resume = None
    try:
        if cfg.resume is not None and not str(cfg.resume).strip():
            raise ConfigError(
                f"resume={cfg.resume}",
                "empty; give the run dir to continue (resume=outputs/DATE/TIME_...); "
                "an unset shell variable gives this",
            )
        if cfg.resume:
            task = overrides if overrides is not None else _task_overrides()
            resume, run, env, eval_env, model = _resume(cfg, task, fresh_dir)
            cfg = resume.cfg
        else:
            env, eval_env, model = build(cfg)
    except AlreadyFinished as done:
        state = done.resume.state
        print(
            f"{done.resume.run_dir}: already trained {state.step} of total_timesteps="
            f"{done.resume.cfg.total_timesteps} steps; nothing to do (raise total_timesteps "
            "to train on)"
        )
        return done.resume.run_dir
    except ConfigError:
        if fresh_dir is not None:
            _remove_if_fresh(fresh_dir)
        raise
    if resume is not None:
        run_dir = resume.run_dir
    else:
        run_dir = run_dir if run_dir is not None else fresh_dir
        if run_dir is None:
            raise RuntimeError("train() needs a run dir outside a Hydra app")
        run = RunDir(run_dir)
        try:
            run.acquire()
        except ConfigError:
            env.close()
            eval_env.close()
            raise
    try:
        run.write_config(effective_config(cfg))
        run.write_status("running", model.num_timesteps, cfg.total_timesteps)
        _learn(cfg, run_dir, sweep_name, env, eval_env, model, resume, callbacks)
    except BaseException as error:
        run.write_status(*_stopped_status(error, model, cfg))
        raise
    else:
        step, total = model.num_timesteps, int(cfg.total_timesteps)
        if step >= total:
            run.write_status("finished", step, total)
        else:  # a callback ended training early: a pruned trial of a sweep
            run.write_status("interrupted", step, total, "training stopped early by a callback")
    finally:
        env.close()
        eval_env.close()
        run.release()
    return run_dir


def _stopped_status(
    error: BaseException, model: BaseAlgorithm, cfg: DictConfig
) -> tuple[Literal["interrupted", "failed"], int, int, str]:
    """``status.json``'s fields for a run that ``error`` ended before its budget."""
    if isinstance(error, KeyboardInterrupt) or (
        isinstance(error, SystemExit) and error.code in (130, 143)
    ):
        reason = {130: "SIGINT", 143: "SIGTERM"}.get(getattr(error, "code", 130), "a signal")
        return "interrupted", model.num_timesteps, cfg.total_timesteps, f"stopped by {reason}"
    lines = str(error).strip().splitlines()
    detail = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return "failed", model.num_timesteps, cfg.total_timesteps, detail


def _learn(
    cfg: DictConfig,
    run_dir: Path,
    sweep_name: str | None,
    env: VecEnv,
    eval_env: VecEnv,
    model: BaseAlgorithm,
    resume: Resume | None,
    extra_callbacks: Sequence[BaseCallback] = (),
) -> None:
    """Learn up to ``total_timesteps`` with checkpoints, under W&B; stop cleanly on a signal."""
    wandb_id = resume.state.wandb_id if resume is not None else None
    if resume is not None:
        clean_temporary(run_dir)
        truncate_csv(run_dir, resume.state.csv_rows)
        for key, (old, new) in resume.changed.items():
            log.info(f"resume: {key}={new} (was {old}), from the command line")
        log.info(f"resume: {run_dir} from {resume.checkpoint.name} (step {model.num_timesteps})")
    # Signals are handled from before W&B starts until it has finished: a stop during set-up
    # stops at the first step; a second signal during W&B's finish still exits with one line.
    stop = StopOnSignal("stopping after this step and writing a checkpoint (again: at once)")
    resume_hint = f"python run.py {shell_override('resume', run_dir)}"
    checkpointer: Checkpointer | None = None
    stopped: str | None = None
    try:
        with (
            stop.handling_signals(),
            tracking(cfg, run_config(cfg), run_dir, sweep_name, run_id=wandb_id) as run,
        ):
            checkpointer = Checkpointer(
                run_dir,
                cfg,
                run.id if run is not None else wandb_id,
                keep=cfg.checkpoint.keep,
                replay=cfg.checkpoint.replay,
            )
            model.set_logger(make_logger(run_dir, run, cfg.verbose, append=resume is not None))
            evaluation = periodic_evaluation(
                cfg, eval_env, run_dir, should_stop=lambda: stop.signum is not None
            )
            nan_guard = StopOnNonFinite()
            callbacks = [
                TrainingStats(cfg.stats_freq),
                TrainingGames(RunDir(run_dir).games_path),
                evaluation,
                *extra_callbacks,
            ]
            callbacks += [nan_guard] if cfg.stop_on_nan else []
            callbacks += [PeriodicCheckpoint(cfg.checkpoint.freq, checkpointer.save), stop]
            callbacks += [ProgressBar()] if cfg.progress_bar else []
            model.learn(
                # SB3 adds num_timesteps to this when reset_num_timesteps is False
                total_timesteps=max(cfg.total_timesteps - model.num_timesteps, 0),
                callback=callbacks,
                log_interval=cfg.log_interval,
                reset_num_timesteps=resume is None,
            )
            if cfg.stop_on_nan and (nan_guard.bad is not None or not nan_guard.check()):
                _stop_on_nan(nan_guard, model, checkpointer, resume_hint)
            trained = model.num_timesteps >= cfg.total_timesteps
            checkpoint = checkpointer.save(model, finished=trained and evaluation.final_done)
            if trained:  # also on a stop: the training is complete, only the evaluation may lack
                model.save(RunDir(run_dir).model_path)
            if stop.signum is not None and not (trained and evaluation.final_done):
                stopped = _stop_line(stop.signum, model, checkpoint, trained, resume_hint)
                raise SystemExit(stop.exit_code)  # W&B's run finishes with this exit code
    except KeyboardInterrupt:
        last = checkpointer.latest if checkpointer is not None else None
        where = f"last checkpoint {last}; resume: {resume_hint}" if last else "no checkpoint"
        print(f"stopped at once (second signal); {where}", file=sys.stderr)
        raise SystemExit(130) from None
    except SystemExit:
        if stopped:  # after W&B's closing lines, so that it is the last line a user sees
            print(stopped, file=sys.stderr)
        raise

    scores = evaluation.last_scores
    if scores is not None:
        log.info(
            f"final evaluation: {scores.mean():.3f} +/- {scores.std():.3f} over "
            f"{len(scores)} episodes; run dir: {run_dir}"
        )


def _stop_line(
    signum: int, model: BaseAlgorithm, checkpoint: Path, trained: bool, hint: str
) -> str:
    """What a stop kept and how to go on, as the last line a user sees."""
    name = signal.Signals(signum).name
    if trained:
        return (
            f"{name} during the final evaluation: training complete, model.zip written; "
            f"play the final evaluation with: {hint}"
        )
    return f"{name} at step {model.num_timesteps}: checkpoint {checkpoint}; continue with: {hint}"


def periodic_evaluation(
    cfg: DictConfig,
    eval_env: VecEnv,
    run_dir: Path,
    should_stop: Callable[[], bool] | None = None,
) -> PeriodicEvaluation:
    """The evaluation callback that ``cfg.eval`` describes, writing into ``run_dir``.

    :param should_stop: asked between env steps of an evaluation, True cuts it short (a signal)
    """
    return PeriodicEvaluation(
        eval_env,
        csv_path=RunDir(run_dir).evaluations_path,
        freq=cfg.eval.freq,
        episodes=cfg.eval.episodes,
        final_episodes=cfg.eval.final_episodes,
        epsilon=cfg.eval.epsilon,
        gif_path=RunDir(run_dir).gif_path if cfg.eval.gif else None,
        progress_bar=cfg.progress_bar,
        should_stop=should_stop,
        verbose=cfg.verbose,
    )


def _stop_on_nan(
    guard: StopOnNonFinite, model: BaseAlgorithm, checkpointer: Checkpointer, hint: str
) -> None:
    """One line: which value went non-finite where, and the last good checkpoint to go back to."""
    key, value = guard.bad or ("train/loss", float("nan"))
    last = checkpointer.latest
    where = (
        f"the last good state is {last} ({hint} after lowering the learning rate, e.g. "
        "dqn.learning_rate=...)"
        if last is not None
        else "no checkpoint was written before it"
    )
    raise ConfigError(
        key, f"became {value} at step {model.num_timesteps}; training stopped, {where}"
    )
