"""Sweeps (``python run.py -m ...``) on any Hydra launcher: isolation, progress, summary, skip.

Hydra runs each job through ``run_job``, which records an exception as a failed job and lets
the others run; the basic sweeper then raises the first failure after its batch, and
``on_multirun_end`` is not called on that path. So each job's outcome is written to
``job_status.json`` in its own dir by :class:`SweepMonitor` (launchers run jobs in other
processes or on other machines, and only files reach the driver reliably), and ``run.py``
prints :func:`summary` and exits non-zero when any job failed, whichever way the sweep ended.

Re-running a sweep into its dir skips its finished jobs and resumes its interrupted ones, but
only a job whose dir holds a run of the same values (the effective config of
:meth:`RunDir.config` against the job's composed config, :data:`RELAUNCH_KEYS` aside).
Otherwise the old results would be reported, and compared, under the new values while Hydra
rewrites the job's ``.hydra/config.yaml`` to say so. With the basic sweeper every job is known
up front, so the driver refuses the whole sweep with one line before any job starts
(:func:`refuse_changed_jobs`); other sweepers (Optuna) draw their jobs as they go, so each job
checks itself (:func:`refuse_changed_job`): it fails with one line and puts Hydra's record back.
A failed job that left no results (a bad value) is simply run again with the new values.

In a sweep a job trains in a process of its own (:func:`_train_in_child`), which the launcher's
worker only waits for. The OOM killer picks the biggest process, the one that trains; a SIGKILL
of it is then one failed job ("killed by SIGKILL"), not a dead joblib pool
(``TerminatedWorkerError``: every other job lost), a Ray task run again, or a submitit job that
the summary never sees. A job whose worker died all the same (its dir set up by Hydra, no
``job_status.json``) is counted as failed by the summary.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus, configure_log
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from stable_baselines3.common.callbacks import BaseCallback

from custom.callbacks import EveryNSteps
from experiments.checkpoints import read_state
from experiments.config import effective_config
from experiments.errors import ConfigError, shell_override
from experiments.run_dir import (
    HYDRA_CONFIG,
    JOB_STATUS,
    TRACEBACK,
    Evaluation,
    NotARun,
    RunDir,
    config_differences,
)

log = logging.getLogger("sweep")

#: Keys that may differ between a job's run and the same job launched again: what run_job sets
#: itself (``resume``; ``torch_threads`` from the launcher's share of the cores), Hydra's own
#: node, and the progress bar, which changes what the console shows and nothing else.
RELAUNCH_KEYS = ("resume", "torch_threads", "hydra", "progress_bar")
#: Hydra's record of a job's overrides, written beside its ``.hydra/config.yaml`` as the job starts.
_HYDRA_OVERRIDES = HYDRA_CONFIG.with_name("overrides.yaml")
_BASIC_SWEEPER = f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"


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
        check_sweep_settings(config)
        if config.hydra.sweeper._target_ == _BASIC_SWEEPER:
            refuse_changed_jobs(config)

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
                (run_dir / TRACEBACK).write_text(details)
                detail += f" (traceback: {run_dir / TRACEBACK})"
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "job": _name(config),
            "status": status,
            "detail": detail,
            "seconds": round(seconds, 1),
            "overrides": list(config.hydra.overrides.task),
        }
        (run_dir / JOB_STATUS).write_text(json.dumps(record, indent=1) + "\n")
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
    if isinstance(error, JobFailed):  # already one line, from the training process
        return error
    if user_error is not None:
        return JobFailed(f"error: {user_error}")
    return JobFailed(_one_line(error), _traceback(error))


def _jobs(sweep_dir: Path, since: float) -> list[_Job]:
    """The jobs of this sweep: each dir with a status file or a Hydra record written since.

    A job's outcome is its ``job_status.json``. A job that never wrote one (its process died
    with it: SIGKILL, the OOM killer, a lost node) is a failed job, with what its run dir says.
    """
    written = [path for path in sweep_dir.rglob(JOB_STATUS) if not _older(path, since)]
    records = [
        path
        for path in sweep_dir.rglob(_HYDRA_OVERRIDES.name)
        if path.parent.name == _HYDRA_OVERRIDES.parent.name and not _older(path, since)
    ]
    reported = {path.parent for path in written}
    jobs = []
    for path in written:
        fields = json.loads(path.read_text())
        jobs.append(_Job(fields["job"], fields["status"], fields["detail"], fields["overrides"]))
    for record in records:
        job_dir = record.parent.parent
        if job_dir not in reported:
            name = str(job_dir.relative_to(sweep_dir))
            overrides = list(OmegaConf.load(record))
            jobs.append(_Job(name, "failed", _silent_end(RunDir(job_dir)), overrides))
    return sorted(jobs, key=lambda job: _job_number(job.name))


def _older(path: Path, since: float) -> bool:
    """Written before ``since`` (a second of slack for coarse file times)."""
    return path.stat().st_mtime < since - 1


def _silent_end(run_dir: RunDir) -> str:
    """Why a job that never reported is failed, from what its run dir says."""
    status = run_dir.status()
    said = f" (its run: {status.status} at step {status.step})" if status is not None else ""
    return (
        f"its process ended without reporting (killed: SIGKILL, the OOM killer, a lost node){said}"
    )


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
    override = shell_override("hydra.sweep.dir", _sweep["dir"])
    return (
        f"sweep {_sweep['dir']}: {failed} of {_sweep['total']} jobs failed (summary above; "
        f"re-run the same command with {override} to run only the jobs not finished)"
    )


def changed_config(run_dir: RunDir, cfg: DictConfig) -> dict[str, tuple[Any, Any]]:
    """What ``cfg`` changes against the run already in ``run_dir`` (empty when there is none).

    Only a dir with results of its own counts: a job that failed before training (a bad value)
    left nothing that could be skipped, resumed or mistaken for the new job's results.
    """
    if not _has_results(run_dir):
        return {}
    try:
        old = run_dir.config()
    except NotARun:
        return {}
    return config_differences(old, effective_config(cfg), ignore=RELAUNCH_KEYS)


def _has_results(run_dir: RunDir) -> bool:
    """Whether training ever started in ``run_dir``: its config, an evaluation, a checkpoint."""
    files = (run_dir.config_path, run_dir.evaluations_path, run_dir.model_path)
    return any(path.is_file() for path in files) or bool(run_dir.checkpoints())


def _changes_text(differences: dict[str, tuple[Any, Any]]) -> str:
    """``key old -> new, ...``; a key one side lacks reads ``(absent)``."""

    def text(value: Any) -> str:
        return "(absent)" if value is None else str(value)

    return ", ".join(f"{key} {text(old)} -> {text(new)}" for key, (old, new) in differences.items())


def _changed_job_line(sweep_dir: Path, job: str, changes: str, outcome: str) -> str:
    """One line for a job whose dir holds a run of other values, and what to do about it."""
    return (
        f"{shell_override('hydra.sweep.dir', sweep_dir)}: job {job} there ran with other values: "
        f"{changes}; "
        f"{outcome}, so that no result is reported under values it did not run with: run these "
        "values into a fresh sweep dir (a new hydra.sweep.dir, or none), or re-run the command "
        "that made that sweep to finish it"
    )


#: Launcher and sweeper counts that pass Hydra's schema but crash the sweep with a traceback
#: (joblib: "n_jobs == 0 ... has no meaning"; the basic sweeper: a bare assert), as
#: ``key -> (smallest allowed value, what else is allowed)``.
_SETTING_MINIMUMS = {
    "hydra.launcher.n_jobs": (1, "or negative to count back from all cores (-1: all of them)"),
    "hydra.sweeper.max_batch_size": (1, "or null for one batch of every job"),
    "hydra.launcher.timeout_min": (1, ""),
    "hydra.launcher.cpus_per_task": (1, "or null"),
    "hydra.launcher.tasks_per_node": (1, ""),
    "hydra.launcher.nodes": (1, ""),
    "hydra.launcher.mem_gb": (1, "or null"),
    "hydra.launcher.gpus_per_node": (0, "or null"),
}


def check_sweep_settings(config: DictConfig) -> None:
    """Refuse, with one line, a launcher or sweeper count that would crash the sweep.

    :raises SystemExit: ``error: <key>=<value>: must be >= N ...`` (a callback's exception would
        only be a warning to Hydra)
    """
    for key, (minimum, otherwise) in _SETTING_MINIMUMS.items():
        value = OmegaConf.select(config, key, default=None)
        if value is None or not isinstance(value, int) or value >= minimum:
            continue
        if key.endswith("n_jobs") and value < 0:
            continue
        advice = f"must be >= {minimum}" + (f", {otherwise}" if otherwise else "")
        raise SystemExit(f"error: {key}={value}: {advice}")


def _planned_jobs(config: DictConfig) -> list[tuple[str, DictConfig]]:
    """``(subdir, composed config)`` of every job the basic sweeper will launch, in its order.

    The same steps as ``BasicSweeper.sweep`` and the launchers (``hydra.sweeper.params``, then
    the command's overrides, split into jobs; each composed by Hydra's own config loader and
    numbered from 0), so each job's dir is the one its launcher will use.
    """
    loader = GlobalHydra.instance().config_loader()
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.params or {}).items()]
    task = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    assert isinstance(task, list)
    arguments = params + [str(override) for override in task]
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    (jobs,) = BasicSweeper.split_arguments(overrides, None)
    planned = []
    driver_config = HydraConfig.instance().cfg
    try:
        for number, job_overrides in enumerate(jobs):
            job = loader.load_sweep_config(config, list(job_overrides))
            with open_dict(job):
                job.hydra.job.num = job.hydra.job.id = number
            HydraConfig.instance().set_config(job)  # for ${hydra:...} in a user's subdir
            subdir = str(job.hydra.sweep.subdir)
            with read_write(job), open_dict(job):
                del job["hydra"]  # what the task gets, as Hydra's run_job does
            planned.append((subdir, job))
    finally:
        HydraConfig.instance().cfg = driver_config
    return planned


def refuse_changed_jobs(config: DictConfig) -> None:
    """Before any job starts: refuse a sweep whose jobs' dirs hold runs of other values.

    Re-running a sweep into its dir skips its finished jobs and resumes its interrupted ones;
    if a value changed, that would report the old runs' results under the new values (and
    Hydra would rewrite each job's ``.hydra/config.yaml`` to say so).

    :raises SystemExit: with one line naming the first such job, its differing keys, old -> new
    """
    sweep_dir = Path(config.hydra.sweep.dir)
    if not sweep_dir.is_dir():
        return
    changed = []
    for subdir, job in _planned_jobs(config):
        differences = changed_config(RunDir(sweep_dir / subdir), job)
        if differences:
            changed.append((subdir, differences))
    if changed:
        subdir, differences = changed[0]
        more = f" (and {len(changed) - 1} more job(s))" if len(changed) > 1 else ""
        # Hydra turns a callback's exception into a warning and sweeps on: exit instead.
        changes = _changes_text(differences) + more
        raise SystemExit(f"error: {_changed_job_line(sweep_dir, subdir, changes, 'nothing run')}")


def refuse_changed_job(run_dir: RunDir, cfg: DictConfig) -> None:
    """In a job: fail it when its dir holds a run of other values, and put back Hydra's record.

    The check that works with every sweeper (Optuna draws its trials as it goes). Hydra has
    already rewritten ``.hydra/config.yaml`` (and ``overrides.yaml``) for this launch, so they
    are rewritten again with what the run in the dir really ran.

    :raises ConfigError: naming the differing keys, old -> new
    """
    differences = changed_config(run_dir, cfg)
    if not differences:
        return
    OmegaConf.save(run_dir.config(), run_dir / HYDRA_CONFIG)
    with contextlib.suppress(OSError, ValueError, KeyError):
        old_overrides = json.loads((run_dir / JOB_STATUS).read_text())["overrides"]
        OmegaConf.save(OmegaConf.create(old_overrides), run_dir / _HYDRA_OVERRIDES)
    line = _changed_job_line(
        run_dir.path.parent, run_dir.path.name, _changes_text(differences), "not run"
    )
    raise ConfigError(*line.split(": ", 1))


def run_job(cfg: DictConfig, train: Callable[..., Path]) -> float | None:
    """Run one job; in a sweep, skip it when its dir already holds a finished run, and resume
    it from its latest checkpoint when it was interrupted (Ctrl-C, SIGTERM, a killed node), but
    only when the run there was made with this job's values (else the job fails, one line).

    In a sweep, ``train`` also gets the SB3 callbacks that the sweep's Hydra callbacks set up
    for this job (:class:`Pruning`), and torch gets :func:`threads_per_job`.

    :param cfg: the job's composed config
    :param train: ``experiments.train.train``, which returns the run dir
    :return: the final evaluation mean, or None when the run made no evaluation
    """
    if not in_multirun():
        return RunDir(train(cfg)).final_mean()
    run_dir = RunDir(HydraConfig.get().runtime.output_dir)
    refuse_changed_job(run_dir, cfg)
    if run_dir.is_finished():
        note_job(skipped=True)
        return run_dir.final_mean()
    threads = threads_per_job(cfg)
    if threads is not None:
        cfg.torch_threads = threads
    checkpoint = run_dir.latest_checkpoint()
    overrides = None
    if checkpoint is not None:
        # As `python run.py resume=RUN_DIR torch_threads=N`: the job's own saved config, this
        # launcher's threads, the same W&B run.
        note_job(resumed=read_state(checkpoint).step)
        cfg.resume = str(run_dir.path)
        overrides = [f"torch_threads={cfg.torch_threads}"] if threads is not None else []
    return _train_in_child(_ChildJob(train, cfg, overrides, list(_job_callbacks), _hydra_node()))


@dataclass
class _ChildJob:
    """What the training process of a job needs: the task, and Hydra's view of the job."""

    train: Callable[..., Path]
    cfg: DictConfig
    overrides: list[str] | None
    callbacks: list[BaseCallback]
    hydra: DictConfig


@dataclass
class _ChildOutcome:
    """What the training process of a job sends back to the launcher's worker."""

    value: float | None = None
    error: Exception | None = None
    traceback: str = ""
    exit_code: int | None = None
    note: dict[str, Any] = field(default_factory=dict)


class _RemoteTraceback(Exception):
    """The training process's traceback, as the cause of its error re-raised in the worker."""

    def __str__(self) -> str:
        return str(self.args[0])


def _hydra_node() -> DictConfig:
    """This job's Hydra config, resolved here: ``${now:...}`` must not be drawn again."""
    resolved = OmegaConf.to_container(HydraConfig.get(), resolve=True)
    return OmegaConf.create({"hydra": resolved})


_CHILD_MAIN = "from experiments.sweeps import child_main; child_main()"


def _train_in_child(job: _ChildJob) -> float | None:
    """Train in a process of its own, which this worker only waits for.

    When the training process dies (SIGKILL, the OOM killer, which picks the biggest process),
    the job fails with that reason while the worker, the launcher's pool and the other jobs
    live on. The child is in the worker's process group, so a Ctrl-C or a scheduler's signal
    reaches it as it reached training before; the worker waits for it to write its checkpoint.
    If the worker dies first, the child gets SIGTERM (``PR_SET_PDEATHSIG``) and checkpoints.
    """
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    read_end, write_end = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_MAIN, str(write_end), str(os.getpid())],
        stdin=subprocess.PIPE,
        pass_fds=(write_end,),
        env={**os.environ, "PYTHONPATH": path},
    )
    os.close(write_end)
    assert child.stdin is not None
    with child.stdin:
        child.stdin.write(pickle.dumps(job))
    answer = _read_all(read_end)
    returncode = _wait(child)
    if not answer:
        raise JobFailed(_death(returncode))
    outcome: _ChildOutcome = pickle.loads(answer)
    note_job(**outcome.note)
    if outcome.exit_code is not None:
        raise SystemExit(outcome.exit_code)  # stopped by a signal: the sweep stops, as before
    if outcome.error is not None:
        raise outcome.error from _RemoteTraceback(outcome.traceback)
    return outcome.value


def _read_all(fd: int) -> bytes:
    """Everything the child writes to ``fd`` until it closes it; a Ctrl-C does not stop it."""
    chunks = []
    try:
        while chunk := _read_on(fd):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _read_on(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, 1 << 16)
        except KeyboardInterrupt:  # the child got it too and is writing its checkpoint
            continue


def _wait(child: subprocess.Popen[bytes]) -> int:
    """The child's exit status; a Ctrl-C in the worker waits on for the child's own stop."""
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def _death(returncode: int) -> str:
    """One line for a training process that ended without an answer."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        why = " (out of memory? the OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"the training process was killed by {name}{why}"
    return f"the training process ended with exit code {returncode} and no result"


def child_main() -> None:
    """The training process of :func:`_train_in_child`: ``-c`` with the answer's fd and the
    worker's pid; the job arrives pickled on stdin."""
    answer_fd, worker = int(sys.argv[1]), int(sys.argv[2])
    _die_with(worker)
    job: _ChildJob = pickle.load(sys.stdin.buffer)
    HydraConfig.instance().cfg = job.hydra  # type: ignore[assignment]  # resolved, untyped
    hydra = job.hydra.hydra
    configure_log(hydra.job_logging, hydra.verbose)  # run.log (appending) and the console
    outcome = _ChildOutcome()
    try:
        kwargs = {} if job.overrides is None else {"overrides": job.overrides}
        outcome.value = RunDir(job.train(job.cfg, callbacks=job.callbacks, **kwargs)).final_mean()
    except SystemExit as stop:
        outcome.exit_code = stop.code if isinstance(stop.code, int) else 1
    except ConfigError as error:  # not picklable as it is; its one line is all there is to say
        outcome.error = JobFailed(f"error: {error}")
    except Exception as error:
        outcome.error = _picklable(error)
        outcome.traceback = _traceback(error)
    outcome.note = dict(_job_note)
    with os.fdopen(answer_fd, "wb") as answer:
        answer.write(pickle.dumps(outcome))
    sys.exit(outcome.exit_code or 0)


def _picklable(error: Exception) -> Exception:
    """``error`` itself when it survives pickling (the worker's one-line errors know its type),
    else its one line and traceback."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return JobFailed(_one_line(error), _traceback(error))
    return error


def _die_with(worker: int) -> None:
    """Get SIGTERM when the worker dies (Linux), so that training stops with a checkpoint."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != worker:  # it died before the line above
            os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


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
        mine = RunDir(self.run_dir).evaluations()
        if mine and self.should_prune(mine):
            step, value = mine[-1].timesteps, mine[-1].mean_reward
            note_job(pruned=f"stopped at step {step} (evaluation {value:g})")
            log.info(f"[sweep] pruned at step {step}: evaluation {value:g}")
            return False
        return True

    def should_prune(self, mine: list[Evaluation]) -> bool:
        """The pruner's answer for this run's evaluations against the finished runs' ones."""
        import optuna  # here: importing optuna costs about a second, and only pruning needs it

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # create_trial and add_trial are stable API from Optuna 3 on; 2.x calls them experimental.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(direction="maximize", pruner=self.pruner)
        for other, state in self._finished_runs():
            rows = other.evaluations()
            if rows:
                study.add_trial(
                    optuna.trial.create_trial(
                        state=state,
                        value=rows[-1].mean_reward
                        if state == optuna.trial.TrialState.COMPLETE
                        else None,
                        intermediate_values={row.timesteps: row.mean_reward for row in rows},
                    )
                )
        trial = study.ask()
        for row in mine:
            trial.report(row.mean_reward, row.timesteps)
        return bool(trial.should_prune())

    def _finished_runs(self) -> list[tuple[RunDir, Any]]:
        """The sweep's other jobs that ended (run to the end, or pruned), with their state."""
        import optuna

        states = {
            "done": optuna.trial.TrialState.COMPLETE,
            "skipped": optuna.trial.TrialState.COMPLETE,
            "pruned": optuna.trial.TrialState.PRUNED,
        }
        runs = []
        for path in sorted(self.sweep_dir.glob(f"*/{JOB_STATUS}")):
            status = json.loads(path.read_text())["status"]
            if path.parent != self.run_dir and status in states:
                runs.append((RunDir(path.parent), states[status]))
        return runs
