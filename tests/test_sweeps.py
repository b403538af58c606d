"""Sweeps on Hydra's launchers: failures stay in their job, a summary, W&B runs, skips, presets."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.config import CONF_DIR, compose_config, effective_config
from experiments.errors import ConfigError, shell_override
from experiments.run_dir import Evaluation, RunDir
from experiments.sweeps import EvaluationPruning, refuse_changed_job
from experiments.tracking import SUMMARY_KEYS
from tests.wandb_records import records

ROOT = Path(__file__).resolve().parent.parent
#: A CartPole job of a few seconds: 1,500 steps, one evaluation at the end.
SHORT = (
    "total_timesteps=1500",
    "eval.freq=0",
    "eval.episodes=2",
    "dqn.learning_starts=100",
    "progress_bar=false",
)
#: Four jobs in this order: a bad value (gamma 2), a crash (CRASH_HOOK's CartPole raises in
#: its first step), a bad value, a good job.
BAD_CRASH_BAD_GOOD = ("+env.make_kwargs.crash=true,false", "dqn.gamma=2,0.99")
#: A bug in a job, as the sweep meets one: an exception nothing checks for, raised mid-run.
#: Every check of the config passes (CartPole takes the ``crash`` keyword), so the crash path
#: is tested whatever the checks come to cover. Python runs a ``sitecustomize`` module on
#: PYTHONPATH at start-up in every process, launcher workers included.
CRASH_HOOK = """
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

_init, _step = CartPoleEnv.__init__, CartPoleEnv.step


def __init__(self, *args, crash=False, **kwargs):
    _init(self, *args, **kwargs)
    self.crash = crash


def step(self, action):
    if self.crash:
        raise RuntimeError("CartPole crashed (tests/test_sweeps.py CRASH_HOOK)")
    return _step(self, action)


CartPoleEnv.__init__, CartPoleEnv.step = __init__, step
"""


def _env() -> dict[str, str]:
    """The environment of run.py in these tests: W&B offline, Ray without usage stats."""
    env = {**os.environ, "WANDB_MODE": "offline", "RAY_DISABLE_USAGE_STATS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_py(
    *arguments: str, timeout: float = 1200, hook: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python run.py ARGUMENTS`` as a user types it, W&B offline, Ray without usage stats;
    ``hook``: a directory put on PYTHONPATH (its ``sitecustomize`` runs in every process).

    The timeout only catches a hang: a 4-job Ray sweep, about a minute on an idle 2-core
    machine, took over 300 s beside two training jobs.
    """
    env = _env() if hook is None else {**_env(), "PYTHONPATH": str(hook)}
    return subprocess.run(
        [sys.executable, "run.py", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def training_pid(run_dir: Path, timeout: float = 600) -> int:
    """The process training in ``run_dir``: the one holding its ``progress.csv`` open (SB3's
    logger keeps it open while it trains; the launcher's worker never opens it)."""
    target = str(run_dir / "progress.csv")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for fds in Path("/proc").glob("[0-9]*/fd"):
            try:
                if any(os.readlink(fd) == target for fd in fds.iterdir()):
                    return int(fds.parent.name)
            except OSError:  # gone, or not ours to read
                continue
        time.sleep(0.02)
    raise AssertionError(f"nothing trained in {run_dir} within {timeout} s")


def statuses(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """Each job's ``job_status.json``, by job dir name."""
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sweep_dir.glob("*/job_status.json")
    }


def wandb_runs(sweep_dir: Path) -> dict[str, list[Any]]:
    """The records of each job's offline W&B run file, by job dir name (one file per job)."""
    runs: dict[str, list[Any]] = {}
    for path in sweep_dir.glob("*/wandb/offline-run-*/run-*.wandb"):
        job = path.parts[-4]
        assert job not in runs, f"{job} has two W&B runs"
        runs[job] = records(path)
    return runs


def evaluation_steps(run_dir: Path) -> list[int]:
    """The env steps of the rows of a run's ``evaluations.csv``."""
    with (run_dir / "evaluations.csv").open() as file:
        return [int(row["timesteps"]) for row in csv.DictReader(file)]


def of_type(run_records: list[Any], kind: str) -> list[Any]:
    return [getattr(r, kind) for r in run_records if r.WhichOneof("record_type") == kind]


def assert_distinct_finished_runs(
    sweep_dir: Path, jobs: list[str], group: str, crashed: tuple[str, ...] = ()
) -> None:
    """One W&B run per job, each finished once, in one group, with the summary columns; the
    ``crashed`` jobs' runs (a job that fails mid-run has one) end failed, and once."""
    runs = wandb_runs(sweep_dir)
    assert sorted(runs) == sorted([*jobs, *crashed])
    for job in crashed:
        exit_codes = [e.exit_code for e in of_type(runs.pop(job), "exit")]
        assert len(exit_codes) == 1 and exit_codes[0] != 0, (job, exit_codes)
    ids = set()
    for run_records in runs.values():
        (run,) = of_type(run_records, "run")
        ids.add(run.run_id)
        assert run.run_group == group
        assert [e.exit_code for e in of_type(run_records, "exit")] == [0]
        summary_keys = {
            item.key for summary in of_type(run_records, "summary") for item in summary.update
        }
        assert set(SUMMARY_KEYS) <= summary_keys
    assert len(ids) == len(jobs)


@pytest.mark.parametrize(
    "launcher",
    ["basic", pytest.param("joblib", marks=pytest.mark.slow)],
)
def test_a_bad_job_and_a_crash_do_not_stop_the_good_job(tmp_path: Path, launcher: str) -> None:
    sweep_dir = tmp_path / "sweep"
    arguments = ("-m", f"hydra/launcher={launcher}", *BAD_CRASH_BAD_GOOD, *SHORT)
    if launcher == "joblib":
        arguments += ("hydra.launcher.n_jobs=2",)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_HOOK)
    result = run_py(*arguments, f"hydra.sweep.dir={sweep_dir}", hook=hook)

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: sweep {sweep_dir}: 3 of 4 jobs failed")
    assert "Traceback" not in result.stdout + result.stderr
    jobs = statuses(sweep_dir)
    bad = "error: dqn.gamma=2.0: must be in (0, 1]"
    assert {name: job["status"] for name, job in jobs.items()} == {
        "0_cartpole_dqn_seed0": "failed",
        "1_cartpole_dqn_seed0": "failed",
        "2_cartpole_dqn_seed0": "failed",
        "3_cartpole_dqn_seed0": "done",
    }
    assert jobs["0_cartpole_dqn_seed0"]["detail"] == jobs["2_cartpole_dqn_seed0"]["detail"] == bad
    crash_job = "1_cartpole_dqn_seed0"
    crash = jobs[crash_job]["detail"]
    assert crash.startswith("RuntimeError: CartPole crashed (tests/test_sweeps.py CRASH_HOOK)")
    assert "Traceback" in (sweep_dir / "1_cartpole_dqn_seed0" / "traceback.txt").read_text()
    # The summary: a header and one line per job, whatever process ran the jobs.
    summary = result.stdout[result.stdout.index(f"sweep {sweep_dir}: 4 jobs") :].splitlines()
    assert summary[0] == f"sweep {sweep_dir}: 4 jobs, 1 done, 0 skipped, 0 pruned, 3 failed"
    assert [line.split()[:2] for line in summary[1:5]] == [
        ["0_cartpole_dqn_seed0", "failed"],
        ["1_cartpole_dqn_seed0", "failed"],
        ["2_cartpole_dqn_seed0", "failed"],
        ["3_cartpole_dqn_seed0", "done"],
    ]
    # Progress: each job says when it starts and how it ended, as it happens.
    started = [
        line for line in result.stdout.splitlines() if "job 3_cartpole_dqn_seed0 started" in line
    ]
    assert len(started) == 1 and "make_kwargs.crash=False" in started[0]
    good = sweep_dir / "3_cartpole_dqn_seed0"
    assert RunDir(good).is_finished()
    group = f"{tmp_path.name}_sweep"
    assert_distinct_finished_runs(sweep_dir, ["3_cartpole_dqn_seed0"], group, crashed=(crash_job,))


def test_the_same_sweep_again_skips_the_finished_jobs_and_refuses_changed_values(
    tmp_path: Path,
) -> None:
    # A dir name a shell and Hydra's override grammar both need quoted: a space, non-ASCII.
    sweep_dir = tmp_path / "swéep 1"
    sweep = ("-m", "dqn.gamma=2,0.99", *SHORT)
    first = run_py(*sweep, f"hydra.sweep.dir='{sweep_dir}'")
    assert first.returncode == 1
    finished = sweep_dir / "1_cartpole_dqn_seed0"
    model_time = (finished / "model.zip").stat().st_mtime_ns
    # The printed hint, pasted as it is, names the same dir.
    hint = first.stderr.strip().splitlines()[-1]
    assert f"re-run the same command with {shell_override('hydra.sweep.dir', sweep_dir)} " in hint
    (pasted,) = [word for word in shlex.split(hint) if word.startswith("hydra.sweep.dir=")]

    again = run_py(*sweep, pasted)
    assert again.returncode == 1  # the bad job is tried again and fails again
    jobs = statuses(sweep_dir)
    assert jobs["1_cartpole_dqn_seed0"]["status"] == "skipped"
    assert jobs["0_cartpole_dqn_seed0"]["status"] == "failed"
    assert (finished / "model.zip").stat().st_mtime_ns == model_time  # not trained again
    assert len(list(finished.glob("wandb/offline-run-*"))) == 1
    assert f"sweep {sweep_dir}: 2 jobs, 0 done, 1 skipped, 0 pruned, 1 failed" in again.stdout

    # A changed value: its old results would be reported (and compared) as the new value's.
    hydra_record = (finished / ".hydra" / "config.yaml").read_text()
    changed = run_py(*sweep, "dqn.learning_rate=0.01", pasted)
    assert changed.returncode == 1
    assert changed.stderr.strip() == (
        f"error: {shell_override('hydra.sweep.dir', sweep_dir)}: job 1_cartpole_dqn_seed0 there "
        "ran with other values: dqn.learning_rate 0.0023 -> 0.01; nothing run, so that no result "
        "is "
        "reported under values it did not run with: run these values into a fresh sweep dir "
        "(a new hydra.sweep.dir, or none), or re-run the command that made that sweep to "
        "finish it"
    )
    assert "[sweep] job" not in changed.stdout  # refused before any job started
    assert (finished / ".hydra" / "config.yaml").read_text() == hydra_record
    assert statuses(sweep_dir) == jobs
    assert RunDir(finished).config().dqn.learning_rate == 0.0023


def test_a_job_whose_dir_ran_other_values_fails_and_keeps_its_record(tmp_path: Path) -> None:
    """The check inside a job, for sweepers that draw their jobs as they go (Optuna)."""
    run_dir = RunDir(tmp_path / "3_cartpole_dqn_seed0")
    ran = compose_config([*SHORT, "dqn.learning_rate=0.0023"])
    run_dir.write_config(effective_config(ran))  # what a run writes
    run_dir.evaluations_path.write_text("timesteps,episodes,mean_reward\n1500,2,31.5\n")
    (run_dir / "job_status.json").write_text(json.dumps({"overrides": ["seed=0"]}))
    # What Hydra writes as the job starts, before any code of ours runs.
    launched = compose_config([*SHORT, "dqn.learning_rate=0.01", "torch_threads=1"])
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(launched, run_dir / ".hydra" / "config.yaml")
    (run_dir / ".hydra" / "overrides.yaml").write_text("- dqn.learning_rate=0.01\n")

    with pytest.raises(ConfigError, match=r"dqn\.learning_rate 0\.0023 -> 0\.01; not run"):
        refuse_changed_job(run_dir, launched)
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").dqn.learning_rate == 0.0023
    assert OmegaConf.load(run_dir / ".hydra" / "overrides.yaml") == ["seed=0"]
    refuse_changed_job(run_dir, ran)  # the same values (torch_threads aside): no error


def test_a_single_run_keeps_its_one_line_error(tmp_path: Path) -> None:
    result = run_py("dqn.gamma=2", *SHORT, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: dqn.gamma=2.0: must be in (0, 1]"
    assert not (tmp_path / "run").exists()


def test_a_sweep_that_succeeds_exits_zero_with_its_summary(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_py("-m", "seed=0,1", *SHORT, f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"sweep {sweep_dir}: 2 jobs, 2 done, 0 skipped, 0 pruned, 0 failed" in result.stdout
    for job in ("0_cartpole_dqn_seed0", "1_cartpole_dqn_seed1"):
        assert statuses(sweep_dir)[job]["detail"] == (
            f"final evaluation {RunDir(sweep_dir / job).final_mean():g}"
        )


@pytest.mark.slow
def test_ray_sweep_on_a_local_instance_gives_each_job_its_own_finished_wandb_run(
    tmp_path: Path,
) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_py(
        "-m",
        "hydra/launcher=ray",
        "+hydra.launcher.ray.init.num_cpus=2",
        "seed=0,1",
        "algo=dqn,expected_sarsa",
        *SHORT,
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [
        "0_cartpole_dqn_seed0",
        "1_cartpole_expected_sarsa_seed0",
        "2_cartpole_dqn_seed1",
        "3_cartpole_expected_sarsa_seed1",
    ]
    assert {name: job["status"] for name, job in statuses(sweep_dir).items()} == dict.fromkeys(
        jobs, "done"
    )
    assert_distinct_finished_runs(sweep_dir, jobs, f"{tmp_path.name}_sweep")
    for job in jobs:
        runs = wandb_runs(sweep_dir)[job]
        (run,) = of_type(runs, "run")
        assert run.job_type == job.split("_", 2)[2].rsplit("_", 1)[0]


@pytest.mark.slow
def test_submitit_local_sweep_gives_each_job_its_own_finished_wandb_run(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_py(
        "-m", "hydra/launcher=submitit_local", "seed=0,1", *SHORT, f"hydra.sweep.dir={sweep_dir}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = ["0_cartpole_dqn_seed0", "1_cartpole_dqn_seed1"]
    assert_distinct_finished_runs(sweep_dir, jobs, f"{tmp_path.name}_sweep")
    assert f"sweep {sweep_dir}: 2 jobs, 2 done, 0 skipped, 0 pruned, 0 failed" in result.stdout


@pytest.mark.parametrize("env", ["cartpole", "frozenlake"])
def test_targets_presets_sweep_four_targets_over_five_seeds(env: str) -> None:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={env}_targets"], return_hydra_config=True)
    assert cfg.env.name == env
    assert dict(cfg.hydra.sweeper.params) == {
        "algo": "dqn,double_dqn,expected_sarsa,softmax",
        "seed": "range(5)",
    }


def _finished_job(sweep_dir: Path, name: str, rows: list[tuple[int, float]], status: str) -> None:
    job = sweep_dir / name
    job.mkdir(parents=True)
    lines = ["timesteps,episodes,mean_reward"] + [f"{step},10,{value}" for step, value in rows]
    (job / "evaluations.csv").write_text("\n".join(lines) + "\n")
    (job / "job_status.json").write_text(json.dumps({"status": status}))


def _pruning(sweep_dir: Path, run_dir: Path) -> EvaluationPruning:
    config = OmegaConf.create({"eval": {"freq": 1000}, "total_timesteps": 3000})
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    return EvaluationPruning(pruner, run_dir, sweep_dir, config)


def test_pruning_stops_a_run_below_the_finished_runs_median(tmp_path: Path) -> None:
    for seed, scale in enumerate((1.0, 2.0, 3.0, 4.0)):
        rows = [(1000, 100 * scale), (2000, 200 * scale), (3000, 300 * scale)]
        _finished_job(tmp_path, f"{seed}_done", rows, "done")
    _finished_job(tmp_path, "4_failed", [(1000, 1e6)], "failed")  # failed runs do not count
    pruning = _pruning(tmp_path, tmp_path / "5_running")
    assert pruning.should_prune([Evaluation(1000, 249.0)])  # median of 100..400 at 1000: 250
    assert not pruning.should_prune([Evaluation(1000, 251.0)])
    # median at 2000: 500
    assert pruning.should_prune([Evaluation(1000, 251.0), Evaluation(2000, 499.0)])


def test_pruning_waits_for_its_startup_trials(tmp_path: Path) -> None:
    for seed in range(3):
        _finished_job(tmp_path, f"{seed}_done", [(1000, 500.0)], "done")
    assert not _pruning(tmp_path, tmp_path / "3_running").should_prune([Evaluation(1000, 1.0)])


def test_hparams_search_preset_is_optuna_maximising_with_pruning() -> None:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["hparams_search=cartpole_dqn"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize" and sweeper.max_failure_rate == 1.0
    assert "dqn.learning_rate" in sweeper.params
    assert cfg.hydra.callbacks.pruning.pruner._target_ == "optuna.pruners.MedianPruner"


@pytest.mark.slow
def test_an_optuna_search_reports_its_best_trial_and_prunes(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    result = run_py(
        "-m",
        "hparams_search=cartpole_dqn",
        "hydra.sweeper.n_trials=4",
        "hydra.callbacks.pruning.pruner.n_startup_trials=2",
        "hydra.callbacks.pruning.pruner.n_warmup_steps=0",
        "total_timesteps=2000",
        "eval.freq=1000",
        "eval.episodes=3",
        "dqn.learning_starts=500",
        "progress_bar=false",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = statuses(sweep_dir)
    assert len(jobs) == 4
    assert {job["status"] for job in jobs.values()} <= {"done", "pruned"}
    finals = {name: RunDir(sweep_dir / name).final_mean() for name in jobs}
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(value for value in finals.values() if value is not None)
    for name, job in jobs.items():
        steps = evaluations_steps(sweep_dir / name)
        if job["status"] == "pruned":  # stopped at its first evaluation, not evaluated again
            assert steps == [1000]
        else:  # SB3 ends a run at a whole train_freq (16): 2000
            assert steps[:2] == [1000, 2000] and steps[-1] >= 2000


def evaluations_steps(run_dir: Path) -> list[int]:
    with (run_dir / "evaluations.csv").open() as file:
        return [int(row["timesteps"]) for row in csv.DictReader(file)]


def test_the_same_sweep_again_resumes_an_interrupted_job(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    arguments = (
        "-m",
        "seed=0,1",
        *SHORT,
        "checkpoint.freq=1000",
        "eval.freq=500",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert run_py(*arguments).returncode == 0
    # What a stop at step 1000 leaves (SIGINT, SIGTERM or a killed node after a checkpoint):
    # no model, no final checkpoint, evaluations up to the stop.
    interrupted = sweep_dir / "0_cartpole_dqn_seed0"
    uninterrupted_steps = evaluation_steps(interrupted)
    (interrupted / "model.zip").unlink()
    first, *later = sorted((interrupted / "checkpoints").iterdir())
    assert first.name.endswith("1000") and later
    for path in later:
        for file in sorted(path.iterdir()):
            file.unlink()
        path.rmdir()
    assert not RunDir(interrupted).is_finished()

    again = run_py(*arguments)

    assert again.returncode == 0, again.stderr[-2000:]
    assert f"sweep {sweep_dir}: 2 jobs, 1 done, 1 skipped, 0 pruned, 0 failed" in again.stdout
    detail = statuses(sweep_dir)["0_cartpole_dqn_seed0"]["detail"]
    assert detail.startswith("resumed from its checkpoint at step 1000; final evaluation ")
    assert RunDir(interrupted).is_finished()
    # the rows up to the checkpoint kept, then training continued from there: no row twice
    steps = evaluation_steps(interrupted)
    kept = [step for step in uninterrupted_steps if step <= 1000]
    assert steps[: len(kept)] == kept and steps == sorted(set(steps)) and steps[-1] >= 1500
    assert len(list(interrupted.glob("wandb/offline-run-*"))) >= 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("launcher", "options"),
    [("joblib", ("hydra.launcher.n_jobs=2",)), ("submitit_local", ())],
)
def test_a_job_killed_by_sigkill_fails_alone_and_is_counted(
    tmp_path: Path, launcher: str, options: tuple[str, ...]
) -> None:
    """What the OOM killer does: SIGKILL to the biggest process, the one that trains."""
    sweep_dir = tmp_path / "sweep"
    arguments = ("-m", f"hydra/launcher={launcher}", *options, "seed=0,1,2", *SHORT)
    with subprocess.Popen(
        [sys.executable, "run.py", *arguments, f"hydra.sweep.dir={sweep_dir}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    ) as sweep:
        os.kill(training_pid(sweep_dir / "0_cartpole_dqn_seed0"), signal.SIGKILL)
        stdout, stderr = sweep.communicate(timeout=1200)

    assert sweep.returncode == 1, stderr[-3000:]
    assert (
        stderr.strip().splitlines()[-1].startswith(f"error: sweep {sweep_dir}: 1 of 3 jobs failed")
    )
    assert "Traceback" not in stdout + stderr
    assert f"sweep {sweep_dir}: 3 jobs, 2 done, 0 skipped, 0 pruned, 1 failed" in stdout
    jobs = statuses(sweep_dir)
    assert jobs["0_cartpole_dqn_seed0"]["status"] == "failed"
    assert jobs["0_cartpole_dqn_seed0"]["detail"] == (
        "the training process was killed by SIGKILL (out of memory? the OOM killer sends SIGKILL)"
    )
    for job in ("1_cartpole_dqn_seed1", "2_cartpole_dqn_seed2"):
        assert jobs[job]["status"] == "done"
        assert RunDir(sweep_dir / job).is_finished()


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            ("hydra/launcher=joblib", "hydra.launcher.n_jobs=0"),
            "error: hydra.launcher.n_jobs=0: must be >= 1, or negative to count back from all "
            "cores (-1: all of them)",
        ),
        (
            ("hydra.sweeper.max_batch_size=0",),
            "error: hydra.sweeper.max_batch_size=0: must be >= 1, or null for one batch of every "
            "job",
        ),
    ],
)
def test_a_launcher_count_that_would_crash_is_one_line(
    tmp_path: Path, settings: tuple[str, ...], line: str
) -> None:
    result = run_py("-m", "seed=0", *SHORT, *settings, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 1
    assert result.stderr.strip() == line
    assert not (tmp_path / "sweep").exists()
