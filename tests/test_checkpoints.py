"""Never lose a run: unique run dirs, atomic checkpoints, clean stops on signals, resume.

The in-process tests call ``train`` and the checkpoint functions directly; the slow ones run
``run.py`` as a user does and send it real signals (tests/kill_resume.py, which
``benchmarks/kill_test.py`` repeats 20 times for its report).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import Logger

from custom.checkpointing import StopOnSignal
from custom.dqn import SoftmaxDQN, TargetDQN
from custom.prioritized import PrioritizedReplay
from experiments.checkpoints import (
    REPLAY,
    Checkpointer,
    prepare_resume,
    read_state,
    resumed_model,
)
from experiments.errors import ConfigError
from experiments.run_dir import RunDir
from experiments.train import build, train
from tests.kill_resume import CHECKPOINT_FREQ, kill_and_resume

ROOT = Path(__file__).resolve().parent.parent
QUICK = (
    "total_timesteps=1500",
    "dqn.learning_starts=100",
    "dqn.train_freq=4",
    "dqn.gradient_steps=1",
    "dqn.buffer_size=2000",
    "eval.freq=500",
    "eval.episodes=1",
    "checkpoint.freq=500",
    "logger=none",
    "progress_bar=false",
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_two_identical_commands_started_together_get_two_intact_run_dirs(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "run.py"), *QUICK, "total_timesteps=400"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    processes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        assert process.wait(timeout=300) == 0
    run_dirs = sorted(tmp_path.glob("outputs/*/*"))
    assert len(run_dirs) == 2, run_dirs
    for run_dir in run_dirs:
        assert TargetDQN.load(run_dir / "model.zip").num_timesteps >= 400
        assert [int(r["timesteps"]) for r in _rows(run_dir / "evaluations.csv")][-1] >= 400
        steps = RunDir(run_dir).logged_steps()
        assert steps == sorted(set(steps))  # one run's rows only, none interleaved


def test_checkpoints_keep_the_last_k_and_the_replay_buffer_in_the_newest_only(
    compose_config, tmp_path: Path
) -> None:
    cfg = compose_config(*QUICK, "checkpoint.keep=2", "checkpoint.replay=true")
    run_dir = train(cfg, run_dir=tmp_path)
    found = RunDir(run_dir).checkpoints()
    # periodic ones at 500, 1000, 1500; the final one replaces the one at 1500
    assert [read_state(path).step for path in found] == [1000, 1500]
    assert [path.name for path in found if (path / REPLAY).is_file()] == [found[-1].name]
    assert not list((run_dir / "checkpoints").glob(".*"))  # no temporary leftovers
    state = read_state(found[-1])
    assert state.finished and state.step >= 1500
    assert state.csv_rows["evaluations.csv"] == len(_rows(run_dir / "evaluations.csv"))
    assert state.csv_rows["games.csv"] == len(_rows(run_dir / "games.csv")) > 0


def test_a_resumed_run_gets_the_same_weights_counters_rngs_and_replay(
    compose_config, tmp_path: Path
) -> None:
    cfg = compose_config(*QUICK, "env=breakout", "dqn.replay.kind=frames", "checkpoint.replay=true")
    env, eval_env, model = build(cfg)
    try:
        model.learn(600)
        checkpoint = Checkpointer(tmp_path, cfg, "abc123", keep=1, replay=True).save(model)
        resume = prepare_resume(compose_config(f"resume={tmp_path}"), [f"resume={tmp_path}"])
        assert resume.checkpoint == checkpoint and resume.state.wandb_id == "abc123"
        again = resumed_model(resume, env)
    finally:
        env.close()
        eval_env.close()
    assert type(again) is type(model) and again.num_timesteps == model.num_timesteps
    assert again.exploration_rate == pytest.approx(model.exploration_rate)
    for a, b in zip(model.policy.parameters(), again.policy.parameters(), strict=True):
        assert torch.equal(a.cpu(), b.cpu())
    old, new = model.replay_buffer, again.replay_buffer
    assert new.size() == old.size() > 0
    for name in ("frames", "frame_refs", "actions", "rewards", "dones", "timeouts"):
        if hasattr(old, name):
            assert np.array_equal(getattr(old, name), getattr(new, name)), name
    batch_old = old.sample(32, env=None)
    assert batch_old.observations.shape == new.sample(32, env=None).observations.shape
    opt_old = model.policy.optimizer.state_dict()["state"]
    opt_new = again.policy.optimizer.state_dict()["state"]
    assert opt_old.keys() == opt_new.keys() and opt_old
    for key in opt_old:
        assert torch.equal(opt_old[key]["exp_avg"].cpu(), opt_new[key]["exp_avg"].cpu())


def test_a_resumed_prioritized_run_samples_and_anneals_beta_as_the_uninterrupted_one(
    compose_config, tmp_path: Path
) -> None:
    cfg = compose_config(*QUICK, "dqn.replay.prioritized=true", "checkpoint.replay=true")
    env, eval_env, model = build(cfg)
    try:
        model.learn(600)
        Checkpointer(tmp_path, cfg, "abc123", keep=1, replay=True).save(model)
        resume = prepare_resume(compose_config(f"resume={tmp_path}"), [f"resume={tmp_path}"])
        again = resumed_model(resume, env)  # also sets the RNGs to the checkpoint's
    finally:
        env.close()
        eval_env.close()
    old, new = model.replay_buffer, again.replay_buffer
    assert isinstance(old, PrioritizedReplay) and isinstance(new, PrioritizedReplay)
    assert len(np.unique(old.tree.leaves[: old.size()])) > 2  # priorities were written back
    for a, b in zip(old.tree.levels, new.tree.levels, strict=True):
        assert np.array_equal(a, b)
    assert (new.max_priority, new.alpha, new.eps) == (old.max_priority, old.alpha, old.eps)
    # The next gradient steps of both, from the same numpy state: the same rows, importance
    # weights, updates and priorities. beta is a function of env steps: it goes on from 600
    # (beta_anneal_steps was resolved to total_timesteps=1500 at launch), it does not restart.
    rng_state = np.random.get_state()  # noqa: NPY002
    for run in (model, again):
        np.random.set_state(rng_state)  # noqa: NPY002 - the buffers draw from numpy's stream
        run.set_logger(Logger(folder=None, output_formats=[]))
        run.train(gradient_steps=4, batch_size=32)
    assert model.logger.name_to_value["train/per_beta"] == pytest.approx(0.4 + 0.6 * 600 / 1500)
    for key in ("train/per_beta", "train/per_weight_mean", "train/per_priority_spread"):
        assert again.logger.name_to_value[key] == model.logger.name_to_value[key], key
    np.testing.assert_array_equal(new.tree.leaves, old.tree.leaves)
    for a, b in zip(model.policy.parameters(), again.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    np.random.set_state(rng_state)  # noqa: NPY002
    batch_old = old.sample(32)
    np.random.set_state(rng_state)  # noqa: NPY002
    batch_new = new.sample(32)
    np.testing.assert_array_equal(batch_new.indices, batch_old.indices)
    assert torch.equal(batch_new.weights, batch_old.weights)
    assert torch.equal(batch_new.observations, batch_old.observations)


def test_resuming_a_finished_run_does_nothing(compose_config, tmp_path: Path, capsys) -> None:
    run_dir = train(compose_config(*QUICK), run_dir=tmp_path)

    def files() -> dict[Path, int]:  # the lock file records who holds it: not a result
        return {
            p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"
        }

    before = files()
    train(compose_config(f"resume={run_dir}"), overrides=[f"resume={run_dir}"])
    assert "nothing to do" in capsys.readouterr().out
    assert before == files()


def test_resume_with_a_larger_budget_appends_to_the_same_csv_files(
    compose_config, tmp_path: Path
) -> None:
    run_dir = train(compose_config(*QUICK), run_dir=tmp_path)
    rows_before = _rows(run_dir / "evaluations.csv")
    overrides = [f"resume={run_dir}", "total_timesteps=2500"]
    train(compose_config(*overrides), overrides=overrides)
    evaluated = [int(r["timesteps"]) for r in _rows(run_dir / "evaluations.csv")]
    assert _rows(run_dir / "evaluations.csv")[: len(rows_before)] == rows_before
    assert evaluated[len(rows_before) :] == [2000, 2500]  # the original schedule goes on
    steps = RunDir(run_dir).logged_steps()
    assert steps == sorted(set(steps))
    games = [int(r["timesteps"]) for r in _rows(run_dir / "games.csv")]
    assert games == sorted(set(games)) and games[-1] > 1500  # no game twice, the new ones added
    assert TargetDQN.load(run_dir / "model.zip").num_timesteps == 2500
    assert read_state(RunDir(run_dir).latest_checkpoint()).total_timesteps == 2500  # type: ignore[arg-type]


def test_a_softmax_run_resumes_as_softmax(compose_config, tmp_path: Path) -> None:
    cfg = compose_config(*QUICK, "algo=softmax", "total_timesteps=600")
    run_dir = train(cfg, run_dir=tmp_path)
    overrides = [f"resume={run_dir}", "total_timesteps=800"]
    train(compose_config(*overrides), overrides=overrides)
    model = SoftmaxDQN.load(run_dir / "model.zip")
    assert model.num_timesteps == 800 and model.temperature == cfg.algo.kwargs.temperature


def _resume_error(compose_config, *overrides: str) -> str:
    with pytest.raises(ConfigError) as caught:
        train(compose_config(*overrides), overrides=list(overrides))
    return str(caught.value)


def test_resume_refuses_bad_input_with_one_line(compose_config, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert _resume_error(compose_config, f"resume={missing}") == (
        f"resume={missing}: no such directory"
    )
    assert _resume_error(compose_config, f"resume={tmp_path}") == (
        f"resume={tmp_path}: not a run dir: it has no .hydra/config.yaml"
    )
    run_dir = train(compose_config(*QUICK), run_dir=tmp_path / "run")
    assert "keeps its config groups" in _resume_error(
        compose_config, f"resume={run_dir}", "env=frozenlake"
    )
    assert "cannot change when resuming" in _resume_error(
        compose_config, f"resume={run_dir}", "dqn.buffer_size=10", "total_timesteps=3000"
    )


def test_resume_of_a_truncated_checkpoint_is_one_line_and_overwrites_nothing(
    compose_config, tmp_path: Path
) -> None:
    run_dir = train(compose_config(*QUICK), run_dir=tmp_path)
    newest = RunDir(run_dir).checkpoints()[-1]
    data = (newest / "model.zip").read_bytes()
    (newest / "model.zip").write_bytes(data[: len(data) // 2])
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    message = _resume_error(compose_config, f"resume={run_dir}", "total_timesteps=3000")
    assert message.startswith(f"{newest / 'model.zip'}: cannot be loaded (truncated or damaged")
    assert f"delete {newest} to resume from {RunDir(run_dir).checkpoints()[0].name}" in message
    assert before == {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def test_resume_of_a_checkpoint_that_does_not_fit_the_env_is_one_line(
    compose_config, tmp_path: Path
) -> None:
    run_dir = train(compose_config(*QUICK), run_dir=tmp_path)
    config = RunDir(run_dir).checkpoints()[-1] / "config.yaml"
    config.write_text(config.read_text().replace("id: CartPole-v1", "id: Acrobot-v1"))
    message = _resume_error(compose_config, f"resume={run_dir}", "total_timesteps=3000")
    assert "does not fit env=cartpole (Acrobot-v1)" in message


def test_a_non_finite_loss_stops_with_one_line_naming_the_last_good_checkpoint(
    compose_config, tmp_path: Path, monkeypatch
) -> None:
    def diverged(self: TargetDQN, next_obs: torch.Tensor) -> torch.Tensor:
        values = self.q_net_target(next_obs).max(dim=1).values
        return values * float("nan") if self.num_timesteps > 700 else values

    monkeypatch.setattr(TargetDQN, "next_state_values", diverged)
    with pytest.raises(ConfigError) as caught:
        train(compose_config(*QUICK), run_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith("train/loss: became nan at step 70")
    assert "last good state is" in message and "step_000000000500" in message
    assert not (tmp_path / "model.zip").exists()
    assert RunDir(tmp_path).latest_checkpoint().name == "step_000000000500"  # type: ignore[union-attr]


def test_the_wandb_api_key_is_never_written_to_the_run_dir(tmp_path: Path) -> None:
    key = "0123456789abcdef0123456789abcdef01234567"  # a fake key of a real key's form
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "run.py", *QUICK, "logger=wandb", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_API_KEY": key},
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    files = [path for path in run_dir.rglob("*") if path.is_file()]
    assert any(path.name.endswith(".wandb") for path in files)
    assert any(path.parent.parent.name == "checkpoints" for path in files)
    leaking = [str(path) for path in files if key.encode() in path.read_bytes()]
    assert leaking == []
    assert key.encode() not in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "at_step"),
    [(signal.SIGINT, 2_000), (signal.SIGTERM, 5_000), (signal.SIGKILL, 3_500)],
    ids=["SIGINT", "SIGTERM", "SIGKILL"],
)
def test_a_run_killed_at_any_moment_resumes_to_its_budget_without_doubles(
    tmp_path: Path, signum: int, at_step: int
) -> None:
    outcome = kill_and_resume(tmp_path / "run", signum, at_step)
    assert outcome.ok, outcome.problem
    if signum == signal.SIGKILL:
        assert 0 <= outcome.redone <= CHECKPOINT_FREQ
    else:  # the stop wrote a checkpoint where it stopped: nothing is redone
        assert outcome.resumed_from >= outcome.logged_before_kill


def test_the_first_signal_asks_to_stop_and_a_second_one_stops_at_once() -> None:
    stop = StopOnSignal()
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where a shell started us in background
    with stop.handling_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM and stop.exit_code == 143
        assert stop._on_step() is False  # learn() ends after this step
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # restored
