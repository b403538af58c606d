"""Sweeps (``python run.py -m ...``) on any Hydra launcher: isolation, progress, summary, skip.

Hydra runs each job through ``run_job``, which records an exception as a failed job and lets
the others run; the basic sweeper then raises the first failure after its batch, and
``on_multirun_end`` is not called on that path. So each job's outcome is written to
``job_status.json`` in its own dir by :class:`SweepMonitor` (launchers run jobs in other
processes or on other machines, and only files reach the driver reliably), and ``run.py``
prints :func:`summary` and exits non-zero when any job failed, whichever way the sweep ended.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from stable_baselines3.common.callbacks import BaseCallback

from custom.callbacks import EveryNSteps

log = logging.getLogger("sweep")

STATUS_FILE = "job_status.json"
TRACEBACK_FILE = "traceback.txt"


class JobFailed(Exception):
    """A job's failure as it travels back to the driver: picklable whatever raised it.

    :param message: one line, ``error: <key>: <problem>`` or ``<ExceptionType>: <message>``
    :param details: the traceback, written to the job's ``traceback.txt``; empty for user errors
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message, details)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


def in_multirun() -> bool:
    """True inside a job of ``python run.py -m``."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def evaluations(run_dir: Path) -> list[tuple[int, float]]:
    """``(timesteps, mean_reward)`` of every evaluation in ``run_dir/evaluations.csv``."""
    path = run_dir / "evaluations.csv"
    if not path.is_file():
        return []
    with path.open() as file:
        return [(int(row["timesteps"]), float(row["mean_reward"])) for row in csv.DictReader(file)]


def final_mean(run_dir: Path) -> float | None:
    """The last evaluation's mean: what a run reports and ``hparams_search`` maximises."""
    rows = evaluations(run_dir)
    return rows[-1][1] if rows else None


def is_finished(run_dir: Path, total_timesteps: int) -> bool:
    """A finished run has its model and an evaluation at (or past) ``total_timesteps``."""
    rows = evaluations(run_dir)
    return (run_dir / "model.zip").is_file() and bool(rows) and rows[-1][0] >= total_timesteps


def threads_per_job(cfg: DictConfig) -> int | None:
    """Torch threads for one job so that parallel jobs do not oversubscribe the cores.

    Only when the config leaves ``torch_threads`` unset: joblib's ``n_jobs`` jobs share the
    machine's cores; a Ray task or a submitit job gets the CPUs it asked for.
    """
    if cfg.torch_threads is not None or not in_multirun():
        return None
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    cores = os.cpu_count() or 1
    if "joblib" in target:
        n_jobs = int(launcher.n_jobs)
        parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
        return max(1, cores // parallel)
    if "ray" in target:
        return int(launcher.ray.remote.get("num_cpus") or 1)
    if "submitit" in target:
        return int(launcher.get("cpus_per_task") or 1)
    return None


@dataclass
class _Job:
    """What the driver learns about one job from its status file."""

    name: str
    status: str
    detail: str
    overrides: list[str]


#: In this process: the sweep's dir and start time (driver), and what the task noted (a job).
_sweep: dict[str, Any] = {}
_job_note: dict[str, Any] = {}


def note_job(**note: Any) -> None:
    """Let the task tell :meth:`SweepMonitor.on_job_end` what happened (e.g. ``skipped=True``)."""
    _job_note.update(note)


class SweepMonitor(Callback):
    """Progress lines while a sweep runs, a status file per job, the summary at the end.

    Registered under ``hydra.callbacks`` in ``conf/config.yaml``. ``on_job_*`` run wherever the
    launcher runs the job (a joblib worker, a Ray task, a SLURM node); ``on_multirun_*`` in the
    driver.
    """

    def __init__(self) -> None:
        self._job_started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _sweep.clear()
        _sweep.update(dir=Path(config.hydra.sweep.dir), started=time.time(), reported=False)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        report()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        _job_note.clear()
        self._job_started = time.time()
        log.info(f"[sweep] job {_name(config)} started: {_overrides_text(config)}")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        seconds = time.time() - self._job_started
        if job_return.status == JobStatus.COMPLETED:
            status = "skipped" if _job_note.get("skipped") else "done"
            value = job_return._return_value
            detail = f"final evaluation {value:g}" if isinstance(value, float) else "no evaluation"
            if status == "skipped":
                detail += " (finished before; not run again)"
            if "resumed" in _job_note:
                detail = f"resumed from its checkpoint at step {_job_note['resumed']}; {detail}"
            if _job_note.get("pruned"):
                status = "pruned"
                detail = f"{_job_note['pruned']}; {detail}"
        else:
            status = "failed"
            error = job_return._return_value
            detail = str(error) if isinstance(error, JobFailed) else _one_line(error)
            details = error.details if isinstance(error, JobFailed) else _traceback(error)
            if details:
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / TRACEBACK_FILE).write_text(details)
                detail += f" (traceback: {run_dir / TRACEBACK_FILE})"
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "job": _name(config),
            "status": status,
            "detail": detail,
            "seconds": round(seconds, 1),
            "overrides": list(config.hydra.overrides.task),
        }
        (run_dir / STATUS_FILE).write_text(json.dumps(record, indent=1) + "\n")
        log.info(f"[sweep] job {_name(config)} {status} in {seconds:.0f} s: {detail}")


def _name(config: DictConfig) -> str:
    return str(config.hydra.sweep.subdir)


def _overrides_text(config: DictConfig) -> str:
    return " ".join(config.hydra.overrides.task) or "(no overrides)"


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _traceback(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def job_failure(error: Exception, user_error: str | None) -> JobFailed:
    """``error`` as it should reach the driver: the user's one line, or the crash with its trace.

    :param error: what the task raised
    :param user_error: its one-line message when the user can fix it (a bad value), else None
    """
    if user_error is not None:
        return JobFailed(f"error: {user_error}")
    return JobFailed(_one_line(error), _traceback(error))


def _jobs(sweep_dir: Path, since: float) -> list[_Job]:
    """The jobs of this sweep: status files under ``sweep_dir`` written since it started."""
    jobs = []
    for path in sorted(sweep_dir.rglob(STATUS_FILE)):
        if path.stat().st_mtime < since - 1:
            continue
        record = json.loads(path.read_text())
        jobs.append(_Job(record["job"], record["status"], record["detail"], record["overrides"]))
    return sorted(jobs, key=lambda job: _job_number(job.name))


def _job_number(name: str) -> tuple[int, str]:
    head = name.split("_", 1)[0]
    return (int(head), name) if head.isdigit() else (-1, name)


def report() -> int | None:
    """Print the sweep's summary once, one line per job; return how many jobs failed.

    None when no sweep ran in this process (a single run).
    """
    if not _sweep:
        return None
    jobs = _jobs(_sweep["dir"], _sweep["started"])
    failed = sum(job.status == "failed" for job in jobs)
    if not _sweep["reported"]:
        _sweep["reported"] = True
        counts = ", ".join(
            f"{sum(job.status == status for job in jobs)} {status}"
            for status in ("done", "skipped", "pruned", "failed")
        )
        width = max((len(job.name) for job in jobs), default=0)
        lines = [f"sweep {_sweep['dir']}: {len(jobs)} jobs, {counts}"]
        lines += [f"  {job.name:<{width}}  {job.status:<7}  {job.detail}" for job in jobs]
        print("\n".join(lines), flush=True)
    _sweep["failed"] = failed
    _sweep["total"] = len(jobs)
    return failed


def failure_line() -> str | None:
    """``sweep <dir>: N of M jobs failed ...`` after a sweep with failures, else None."""
    failed = report()
    if not failed:
        return None
    return (
        f"sweep {_sweep['dir']}: {failed} of {_sweep['total']} jobs failed (summary above; "
        "re-run the same command with hydra.sweep.dir=<that dir> to run only the jobs not finished)"
    )


def run_job(cfg: DictConfig, train: Callable[..., Path]) -> float | None:
    """Run one job; in a sweep, skip it when its dir already holds a finished run, and resume
    it from its latest checkpoint when it was interrupted (Ctrl-C, SIGTERM, a killed node).

    In a sweep, ``train`` also gets the SB3 callbacks that the sweep's Hydra callbacks set up
    for this job (:class:`Pruning`), and torch gets :func:`threads_per_job`.

    :param cfg: the job's composed config
    :param train: ``experiments.train.train``, which returns the run dir
    :return: the final evaluation mean, or None when the run made no evaluation
    """
    # Here, not at the top: experiments.checkpoints imports experiments.cli, which imports this.
    from experiments.checkpoints import latest_checkpoint, read_state

    if in_multirun():
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        if is_finished(run_dir, cfg.total_timesteps):
            note_job(skipped=True)
            return final_mean(run_dir)
        threads = threads_per_job(cfg)
        if threads is not None:
            cfg.torch_threads = threads
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            return final_mean(train(cfg, callbacks=list(_job_callbacks)))
        # As `python run.py resume=RUN_DIR torch_threads=N`: the job's own saved config, this
        # launcher's threads, the same W&B run.
        note_job(resumed=read_state(checkpoint).step)
        cfg.resume = str(run_dir)
        overrides = [f"torch_threads={cfg.torch_threads}"] if threads is not None else []
        return final_mean(train(cfg, overrides=overrides, callbacks=list(_job_callbacks)))
    return final_mean(train(cfg))


class Pruning(Callback):
    """Stop unpromising trials of a sweep early, by an Optuna pruner on their evaluations.

    Hydra's Optuna sweeper cannot prune (hydra #1954): it hands a job only its overrides, not
    the trial. So each job asks the pruner itself, at each evaluation, against the sweep's
    finished jobs as its dir shows them (their ``evaluations.csv``, every evaluation at the same
    steps): that works with any launcher, since only files are shared. A stopped trial ends as
    any run does (final evaluation, model, W&B run); that evaluation is its value for the
    sweeper (a pessimistic one), and its summary line says ``pruned``.

    :param pruner: an ``optuna.pruners`` instance (Hydra instantiates it from the config)
    """

    def __init__(self, pruner: Any) -> None:
        self.pruner = pruner

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        _job_callbacks.clear()
        if config.hydra.mode == RunMode.MULTIRUN and config.eval.freq > 0:
            run_dir = Path(config.hydra.runtime.output_dir)
            sweep_dir = Path(config.hydra.sweep.dir)
            _job_callbacks.append(EvaluationPruning(self.pruner, run_dir, sweep_dir, config))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        _job_callbacks.clear()


#: SB3 callbacks that this job's Hydra callbacks ask ``train`` to add (in this process).
_job_callbacks: list[BaseCallback] = []


class EvaluationPruning(BaseCallback):
    """After each periodic evaluation, ask ``pruner`` whether to stop; stop training if so.

    Placed after :class:`custom.callbacks.PeriodicEvaluation`, at the same steps, so the row of
    the evaluation just played is already in ``evaluations.csv``.
    """

    def __init__(self, pruner: Any, run_dir: Path, sweep_dir: Path, config: DictConfig) -> None:
        super().__init__()
        self.pruner = pruner
        self.run_dir = run_dir
        self.sweep_dir = sweep_dir
        self.every = EveryNSteps(int(config.eval.freq))
        self.total_timesteps = int(config.total_timesteps)

    def _on_training_start(self) -> None:
        self.every.restart(self.num_timesteps)

    def _on_step(self) -> bool:
        if not self.every.due(self.num_timesteps) or self.num_timesteps >= self.total_timesteps:
            return True
        mine = evaluations(self.run_dir)
        if mine and self.should_prune(mine):
            step, value = mine[-1]
            note_job(pruned=f"stopped at step {step} (evaluation {value:g})")
            log.info(f"[sweep] pruned at step {step}: evaluation {value:g}")
            return False
        return True

    def should_prune(self, mine: list[tuple[int, float]]) -> bool:
        """The pruner's answer for this run's evaluations against the finished runs' ones."""
        import optuna  # here: importing optuna costs about a second, and only pruning needs it

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # create_trial and add_trial are stable API from Optuna 3 on; 2.x calls them experimental.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(direction="maximize", pruner=self.pruner)
        for other, state in self._finished_runs():
            rows = evaluations(other)
            if rows:
                study.add_trial(
                    optuna.trial.create_trial(
                        state=state,
                        value=rows[-1][1] if state == optuna.trial.TrialState.COMPLETE else None,
                        intermediate_values=dict(rows),
                    )
                )
        trial = study.ask()
        for step, value in mine:
            trial.report(value, step)
        return bool(trial.should_prune())

    def _finished_runs(self) -> list[tuple[Path, Any]]:
        """The sweep's other jobs that ended (run to the end, or pruned), with their state."""
        import optuna

        states = {
            "done": optuna.trial.TrialState.COMPLETE,
            "skipped": optuna.trial.TrialState.COMPLETE,
            "pruned": optuna.trial.TrialState.PRUNED,
        }
        runs = []
        for path in sorted(self.sweep_dir.glob(f"*/{STATUS_FILE}")):
            status = json.loads(path.read_text())["status"]
            if path.parent != self.run_dir and status in states:
                runs.append((path.parent, states[status]))
        return runs
