"""custom.dqn: the train() override cannot drift from SB3, and each variant works end to end."""

# SB3's buffers sample from numpy's global legacy generator; a test seeds it on purpose.
# ruff: noqa: NPY002
import csv
import hashlib
import inspect
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from custom.buffers import FrameStackReplayBuffer
from custom.dqn import (
    SB3_DQN_TRAIN_SHA256,
    SB3_DQN_TRAIN_VERSION,
    DoubleDQN,
    ExpectedSarsaDQN,
    SoftmaxDQN,
    TargetDQN,
)
from custom.losses import LOSSES
from custom.prioritized import PrioritizedReplay
from custom.replay import replay_buffer_setup
from custom.targets import max_values
from tests.test_buffers import FrameIdStackEnv

ENV = "CartPole-v1"
# Few hundred steps with updates every step and two target-network copies.
STEPS = 400
KWARGS: dict[str, Any] = dict(
    learning_rate=1e-3,
    learning_starts=100,
    train_freq=1,
    target_update_interval=100,
    buffer_size=1_000,
    exploration_fraction=0.5,
    policy_kwargs=dict(net_arch=[32]),
    seed=7,
)
FIRST_WEIGHT = "q_net.q_net.0.weight"
FIRST_CONV = "q_net.features_extractor.cnn.0.weight"
VARIANTS: list[tuple[type[TargetDQN], dict[str, Any]]] = [
    (TargetDQN, {}),
    (DoubleDQN, {}),
    (ExpectedSarsaDQN, {}),
    (SoftmaxDQN, {"temperature": 0.37}),
]


def _params(model: DQN) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.policy.state_dict().items()}


def _assert_same_params(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _learned(cls: type[DQN], **kwargs: Any) -> DQN:
    return cls("MlpPolicy", ENV, **{**KWARGS, **kwargs}).learn(STEPS)


def test_sb3_dqn_train_is_the_copied_one() -> None:
    source = inspect.getsource(DQN.train)
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    assert digest == SB3_DQN_TRAIN_SHA256, (
        f"stable-baselines3 {stable_baselines3.__version__} has a DQN.train that differs from "
        f"SB3 {SB3_DQN_TRAIN_VERSION}'s, which TargetDQN.train (custom/dqn.py) copies line for "
        "line. Either install stable-baselines3=="
        f"{SB3_DQN_TRAIN_VERSION}, or diff the two (inspect.getsource(stable_baselines3.DQN.train)"
        " against TargetDQN.train), port the change into TargetDQN.train, check that the "
        "bit-identical guard tests pass, and then set SB3_DQN_TRAIN_VERSION = "
        f"{stable_baselines3.__version__!r} and SB3_DQN_TRAIN_SHA256 = {digest!r}."
    )


@pytest.mark.parametrize("n_steps", [1, 3])
def test_target_dqn_is_identical_to_stock_dqn(n_steps: int) -> None:
    stock = DQN("MlpPolicy", ENV, n_steps=n_steps, **KWARGS)
    initial = _params(stock)
    stock.learn(STEPS)
    ours = _learned(TargetDQN, n_steps=n_steps)

    # n_steps > 1 is SB3 2.9's n-step replay: NStepReplayBuffer, sampled discounts gamma**k
    buffer_class = NStepReplayBuffer if n_steps > 1 else ReplayBuffer
    assert type(ours.replay_buffer) is type(stock.replay_buffer) is buffer_class
    _assert_same_params(_params(stock), _params(ours))
    # the comparison is not vacuous: learning moved the weights
    assert not torch.equal(initial[FIRST_WEIGHT], _params(stock)[FIRST_WEIGHT])
    assert ours._n_updates == stock._n_updates > 0


def _frame_stack_dqn(
    cls: type[DQN],
    policy_kwargs: dict | None = None,
    replay_buffer_class: type[ReplayBuffer] | None = FrameStackReplayBuffer,
    replay_buffer_kwargs: dict | None = None,
    **kwargs: Any,
) -> DQN:
    """``cls`` on Atari-shaped stacked uint8 frames (2 envs, terminations and time-outs),
    with the frame-once replay buffer (given the model's ``n_steps`` unless
    ``replay_buffer_kwargs`` says otherwise); 4 transitions per update from step 300 on."""

    def make_env() -> gym.Env:
        return gym.wrappers.TimeLimit(FrameIdStackEnv(), max_episode_steps=30)

    if replay_buffer_kwargs is None:
        replay_buffer_kwargs = {}
        if replay_buffer_class is FrameStackReplayBuffer:
            replay_buffer_kwargs = {"n_steps": kwargs.get("n_steps", 1), "gamma": 0.99}
    return cls(
        "CnnPolicy",
        make_vec_env(make_env, n_envs=2, seed=3),
        buffer_size=2_000,
        replay_buffer_class=replay_buffer_class,
        replay_buffer_kwargs=replay_buffer_kwargs,
        learning_starts=300,
        train_freq=2,
        target_update_interval=100,
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}, **(policy_kwargs or {})},
        seed=7,
        device="cpu",
        **kwargs,
    )


# stock DQN warns that n_steps "is ignored" although FrameStackReplayBuffer gets it in its kwargs
@pytest.mark.filterwarnings("ignore:`n_steps=3` is ignored")
@pytest.mark.parametrize("n_steps", [1, 3])
def test_target_dqn_is_identical_to_stock_dqn_with_frame_once_replay(n_steps: int) -> None:
    stock = _frame_stack_dqn(DQN, n_steps=n_steps)
    initial = _params(stock)
    stock.learn(800)
    ours = _frame_stack_dqn(TargetDQN, n_steps=n_steps).learn(800)
    # and both equal stock DQN on SB3's own memory (NStepReplayBuffer when n_steps > 1)
    sb3_memory = _frame_stack_dqn(DQN, replay_buffer_class=None, n_steps=n_steps).learn(800)

    buffer = ours.replay_buffer
    assert isinstance(buffer, FrameStackReplayBuffer) and buffer.n_steps == n_steps
    assert isinstance(stock.replay_buffer, FrameStackReplayBuffer)
    assert type(sb3_memory.replay_buffer) is (NStepReplayBuffer if n_steps > 1 else ReplayBuffer)
    assert buffer.timeouts.any() and (buffer.dones > buffer.timeouts).any()
    _assert_same_params(_params(stock), _params(ours))
    _assert_same_params(_params(sb3_memory), _params(ours))
    assert not torch.equal(initial[FIRST_CONV], _params(stock)[FIRST_CONV])
    assert ours._n_updates == stock._n_updates > 0


def test_refuses_a_replay_buffer_that_ignores_n_steps() -> None:
    """SB3 only warns, and trains 1-step returns; TargetDQN refuses in one line."""
    with pytest.raises(ValueError, match=r"n_steps=3, gamma=0\.99 but the replay buffer"):
        _frame_stack_dqn(TargetDQN, n_steps=3, replay_buffer_kwargs={})
    with pytest.raises(ValueError, match=r"computes 3-step returns with gamma 0\.9:"):
        _frame_stack_dqn(TargetDQN, n_steps=3, replay_buffer_kwargs={"n_steps": 3, "gamma": 0.9})
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1, got 0"):
        TargetDQN("MlpPolicy", ENV, n_steps=0)


def _assert_close_params(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-5
) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=atol, msg=key)


def test_channels_last_update_matches_nchw_after_100_updates() -> None:
    """The channels-last layout changes the speed only: the same parameters to float rounding."""
    steps = 300 + 100 * 4  # learning starts, then 100 updates of 4 transitions each
    nchw = _frame_stack_dqn(TargetDQN)
    initial = _params(nchw)
    nchw.learn(steps)
    nhwc = _frame_stack_dqn(TargetDQN, {"channels_last": True}).learn(steps)

    assert nhwc._n_updates == nchw._n_updates == 100
    _assert_close_params(_params(nchw), _params(nhwc))
    assert not torch.equal(initial[FIRST_CONV], _params(nchw)[FIRST_CONV])


def test_predict_acts_as_stock_dqn_predict() -> None:
    """The lean greedy path: the same actions and the same random draws as SB3's DQN.predict."""
    model = _frame_stack_dqn(TargetDQN, {"channels_last": True}).learn(400)
    model.exploration_rate = 0.5
    obs = np.stack([model.observation_space.sample() for _ in range(6)])

    def stock_predict(observation: np.ndarray, deterministic: bool) -> Any:
        return DQN.predict(model, observation, deterministic=deterministic)

    def act(predict: Any, observation: np.ndarray, deterministic: bool) -> tuple[np.ndarray, int]:
        """30 actions from the same seeds, and the next number the global stream gives."""
        np.random.seed(0)
        model.action_space.seed(1)
        acted = np.array([predict(observation, deterministic=deterministic)[0] for _ in range(30)])
        return acted, np.random.randint(1 << 30)

    for observation in (obs, obs[0]):  # a batch (the lean path) and one observation (SB3's)
        for deterministic in (False, True):
            ours, our_next = act(model.predict, observation, deterministic)
            stock, stock_next = act(stock_predict, observation, deterministic)
            np.testing.assert_array_equal(ours, stock)
            assert ours.dtype == stock.dtype and ours.shape == stock.shape
            assert our_next == stock_next  # the same random draws were taken
    greedy, _ = act(model.predict, obs, deterministic=True)
    explored, _ = act(model.predict, obs, deterministic=False)
    assert (greedy == greedy[0]).all() and (explored != greedy).any()  # both paths ran


def test_guard_detects_a_different_target() -> None:
    stock = _learned(DQN)
    double = _learned(DoubleDQN)
    assert not torch.equal(_params(stock)[FIRST_WEIGHT], _params(double)[FIRST_WEIGHT])


def test_expected_sarsa_with_zero_epsilon_is_dqn() -> None:
    greedy = dict(exploration_initial_eps=0.0, exploration_final_eps=0.0)
    _assert_same_params(
        _params(_learned(DQN, **greedy)), _params(_learned(ExpectedSarsaDQN, **greedy))
    )


def test_expected_sarsa_uses_current_exploration_rate() -> None:
    model = ExpectedSarsaDQN("MlpPolicy", ENV, **KWARGS)
    next_obs = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        q_next = model.q_net_target(next_obs)
        model.exploration_rate = 1.0
        torch.testing.assert_close(model.next_state_values(next_obs), q_next.mean(dim=1))
        model.exploration_rate = 0.0
        torch.testing.assert_close(model.next_state_values(next_obs), max_values(q_next))


def test_double_dqn_selects_with_online_net() -> None:
    model = DoubleDQN("MlpPolicy", ENV, **KWARGS)
    with torch.no_grad():
        for p in model.q_net_target.parameters():
            p.add_(torch.randn_like(p))  # make the two networks disagree
        next_obs = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
        q_target = model.q_net_target(next_obs)
        chosen = model.q_net(next_obs).argmax(dim=1)
        expected = q_target[torch.arange(64), chosen]
        torch.testing.assert_close(model.next_state_values(next_obs), expected)
        assert not torch.equal(expected, max_values(q_target))


@pytest.mark.parametrize(("cls", "extra"), VARIANTS)
def test_learns_and_logs(cls: type[TargetDQN], extra: dict[str, Any], tmp_path: Path) -> None:
    model = cls("MlpPolicy", ENV, **KWARGS, **extra)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(STEPS, log_interval=1)

    with open(tmp_path / "progress.csv") as f:
        last = list(csv.DictReader(f))[-1]
    keys = ["train/loss", "train/q_mean", "train/target_mean", "rollout/exploration_rate"]
    if cls is SoftmaxDQN:
        keys.append("train/temperature")
    for key in keys:
        assert math.isfinite(float(last[key])), key
    if cls is SoftmaxDQN:
        assert float(last["train/temperature"]) == pytest.approx(0.37)
        assert float(last["rollout/exploration_rate"]) == 0.0
    else:
        assert float(last["rollout/exploration_rate"]) > 0.0


@pytest.mark.parametrize(("cls", "extra"), VARIANTS)
def test_save_load_round_trip(cls: type[TargetDQN], extra: dict[str, Any], tmp_path: Path) -> None:
    model = cls("MlpPolicy", ENV, **KWARGS, **extra).learn(200)
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip")

    assert type(loaded) is cls
    if cls is SoftmaxDQN:
        assert isinstance(loaded, SoftmaxDQN)
        assert loaded.temperature == 0.37
    assert loaded.exploration_rate == model.exploration_rate
    _assert_same_params(_params(model), _params(loaded))

    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    if cls is SoftmaxDQN:
        torch.manual_seed(1)
        before = model.predict(obs)[0]
        torch.manual_seed(1)
        np.testing.assert_array_equal(before, loaded.predict(obs)[0])


@pytest.mark.parametrize("loss", list(LOSSES))
def test_train_minimises_the_chosen_loss(loss: str) -> None:
    """train/loss is the chosen loss of the sampled batch, which both losses tell apart."""
    model = _learned(TargetDQN, loss=loss, learning_starts=STEPS)  # filled, not trained yet
    buffer = model.replay_buffer
    assert buffer is not None
    # TD errors well beyond 1.5, where the two losses differ
    buffer.rewards[:] = np.random.default_rng(0).normal(scale=5.0, size=buffer.rewards.shape)
    np.random.seed(0)
    batch = buffer.sample(64)
    with torch.no_grad():
        next_values = max_values(model.q_net_target(batch.next_observations)).reshape(-1, 1)
        target = batch.rewards + (1 - batch.dones) * model.gamma * next_values
        current = model.q_net(batch.observations).gather(1, batch.actions.long())
    expected = {name: float(fn(current, target)) for name, fn in LOSSES.items()}
    assert expected["reference"] != pytest.approx(expected["smooth_l1"])

    np.random.seed(0)
    model.train(gradient_steps=1, batch_size=64)

    assert model.logger.name_to_value["train/loss"] == pytest.approx(expected[loss])


def test_rejects_an_unknown_loss() -> None:
    with pytest.raises(ValueError, match="loss must be one of 'smooth_l1', 'reference'"):
        TargetDQN("MlpPolicy", ENV, loss="l2")


def test_loss_round_trips(tmp_path: Path) -> None:
    model = ExpectedSarsaDQN("MlpPolicy", ENV, loss="reference", **KWARGS)
    model.save(tmp_path / "model.zip")
    assert ExpectedSarsaDQN.load(tmp_path / "model.zip").loss == "reference"
    assert TargetDQN("MlpPolicy", ENV).loss == "smooth_l1"


def _softmax_model(temperature: float) -> SoftmaxDQN:
    """A SoftmaxDQN whose Q-values are (0, 0.5) for every observation."""
    model = SoftmaxDQN("MlpPolicy", ENV, temperature=temperature, **KWARGS)
    head = model.q_net.q_net[-1]
    assert isinstance(head, torch.nn.Linear)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 0.5]))
    return model


def test_softmax_predict_samples_the_softmax_distribution() -> None:
    model = _softmax_model(temperature=0.5)
    obs = np.random.default_rng(0).normal(size=(20_000, 4)).astype(np.float32)
    torch.manual_seed(0)

    actions, _ = model.predict(obs)

    assert actions.shape == (20_000,)
    p1 = math.exp(1) / (1 + math.exp(1))  # softmax((0, 0.5) / 0.5)[1]
    assert actions.mean() == pytest.approx(p1, abs=0.015)  # ~5 standard errors


def test_softmax_predict_deterministic_is_greedy() -> None:
    model = _softmax_model(temperature=100.0)  # nearly uniform when sampling
    obs = np.random.default_rng(0).normal(size=(1_000, 4)).astype(np.float32)
    assert (model.predict(obs, deterministic=True)[0] == 1).all()
    assert 0.4 < model.predict(obs)[0].mean() < 0.6


def test_softmax_predict_single_observation_is_unbatched() -> None:
    model = _softmax_model(temperature=0.5)
    obs = np.zeros(4, dtype=np.float32)
    for deterministic in (False, True):
        action, state = model.predict(obs, deterministic=deterministic)
        assert action.shape == ()
        assert state is None


@pytest.mark.parametrize("temperature", [0.0, -0.5])
def test_softmax_rejects_non_positive_temperature(temperature: float) -> None:
    with pytest.raises(ValueError, match="temperature"):
        SoftmaxDQN("MlpPolicy", ENV, temperature=temperature)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [TargetDQN, ExpectedSarsaDQN])
def test_compiled_update_matches_eager_after_100_updates(
    cls: type[TargetDQN], tmp_path: Path
) -> None:
    """torch.compile changes the speed only; expected SARSA's epsilon changes every step."""

    def learned(compile_update: bool) -> TargetDQN:
        model = cls("MlpPolicy", ENV, **{**KWARGS, "compile_update": compile_update})
        return model.learn(KWARGS["learning_starts"] + 100)  # one update per step after that

    eager, compiled = learned(False), learned(True)

    assert compiled._n_updates == eager._n_updates == 100
    assert compiled.compile_update and compiled.compile_seconds is not None
    assert eager.compile_seconds is None
    _assert_close_params(_params(eager), _params(compiled))
    compiled.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip")
    assert loaded.compile_update and loaded.compile_seconds is None
    _assert_same_params(_params(compiled), _params(loaded))


@pytest.mark.slow
def test_compiled_cnn_update_matches_eager_after_100_updates() -> None:
    """The same on Atari-shaped frames, with the Nature CNN in the channels-last layout."""
    steps = 300 + 100 * 4  # learning starts, then 100 updates of 4 transitions each
    fast = {"channels_last": True}
    eager = _frame_stack_dqn(TargetDQN, fast).learn(steps)
    compiled = _frame_stack_dqn(TargetDQN, fast, compile_update=True).learn(steps)

    assert compiled._n_updates == eager._n_updates == 100
    assert compiled.compile_seconds is not None
    _assert_close_params(_params(eager), _params(compiled))


def test_update_runs_eagerly_where_compilation_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_compiler(module: torch.nn.Module, **_: Any) -> Any:
        def fail(*args: Any) -> Any:
            raise RuntimeError("no C++ compiler found\nsecond line")

        return fail

    monkeypatch.setattr(torch, "compile", no_compiler)
    eager = _learned(TargetDQN)
    with caplog.at_level("WARNING", logger="custom.dqn"):
        fallen_back = TargetDQN("MlpPolicy", ENV, **KWARGS, compile_update=True).learn(STEPS)

    assert "torch.compile failed (RuntimeError: no C++ compiler found)" in caplog.text
    assert not fallen_back.compile_update and fallen_back.compile_seconds is None
    # the failed first step changed nothing: the same update ran eagerly
    _assert_same_params(_params(eager), _params(fallen_back))


def _prioritized(cls: type[TargetDQN], n_steps: int = 1, **kwargs: Any) -> TargetDQN:
    """``cls`` on CartPole with proportional prioritized replay (beta 0.4 -> 1 over 1000 steps)."""
    buffer_class, buffer_kwargs = replay_buffer_setup(
        "standard",
        n_steps=n_steps,
        gamma=0.99,
        prioritized=True,
        alpha=0.6,
        beta=0.4,
        beta_anneal_steps=1000,
        eps=1e-3,
    )
    return cls(
        "MlpPolicy",
        ENV,
        n_steps=n_steps,
        replay_buffer_class=buffer_class,
        replay_buffer_kwargs=buffer_kwargs,
        **{**KWARGS, **kwargs},
    )


@pytest.mark.parametrize(("cls", "extra"), VARIANTS)
def test_prioritized_update_weights_the_loss_and_writes_back_td_errors(
    cls: type[TargetDQN], extra: dict[str, Any]
) -> None:
    """One gradient step by hand, with the variant's own target: the logged loss is the
    weighted loss, and the sampled priorities become |TD error| + eps."""
    model = _prioritized(cls, n_steps=3, learning_starts=STEPS, **extra).learn(STEPS)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplay) and buffer.n_steps == 3
    leaves = np.arange(buffer.size())
    buffer.update_priorities(leaves, np.random.default_rng(0).uniform(0.1, 5.0, len(leaves)))
    buffer.num_timesteps = model.num_timesteps  # what train() tells it
    np.random.seed(0)
    batch = buffer.sample(64)
    assert batch.discounts is not None and not torch.equal(batch.weights, torch.ones(64, 1))
    with torch.no_grad():
        next_values = model.next_state_values(batch.next_observations).reshape(-1, 1)
        target = batch.rewards + (1 - batch.dones) * batch.discounts * next_values
        current = model.q_net(batch.observations).gather(1, batch.actions.long())
    expected_loss = float(LOSSES[model.loss](current, target, batch.weights))
    td_errors = (target - current).abs().numpy().ravel()

    np.random.seed(0)
    model.train(gradient_steps=1, batch_size=64)

    logged = model.logger.name_to_value
    assert logged["train/loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert logged["train/per_weight_mean"] == pytest.approx(float(batch.weights.mean()))
    assert logged["train/per_beta"] == pytest.approx(0.4 + 0.6 * STEPS / 1000)
    assert logged["train/per_priority_spread"] == pytest.approx(buffer.priority_spread())
    # duplicates in a batch: numpy assignment keeps the last
    last = {leaf: i for i, leaf in enumerate(batch.indices)}
    written = buffer.tree.leaves[list(last)]
    expected = (td_errors[list(last.values())].astype(np.float64) + 1e-3) ** 0.6
    np.testing.assert_allclose(written, expected, rtol=1e-5)


def test_prioritized_state_survives_save_and_load(tmp_path: Path) -> None:
    """model.zip keeps the env step (so beta), the replay pickle the priorities."""
    model = _prioritized(TargetDQN).learn(300)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "replay.pkl")
    loaded = TargetDQN.load(tmp_path / "model.zip", env=make_vec_env(ENV))
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    saved, restored = model.replay_buffer, loaded.replay_buffer
    assert isinstance(saved, PrioritizedReplay) and isinstance(restored, PrioritizedReplay)
    assert loaded.num_timesteps == 300 and restored.beta == saved.beta == pytest.approx(0.58)
    np.testing.assert_array_equal(restored.tree.leaves, saved.tree.leaves)
    assert len(np.unique(saved.tree.leaves[: saved.size()])) > 10  # priorities were written
    np.random.seed(4)
    expected = saved.sample(32)
    np.random.seed(4)
    got = restored.sample(32)
    np.testing.assert_array_equal(got.indices, expected.indices)
    assert torch.equal(got.weights, expected.weights)


@pytest.mark.slow
def test_prioritized_dqn_learns_cartpole_a_bit() -> None:
    model = _prioritized(
        DoubleDQN,
        n_steps=3,
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=20_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
    )
    model.learn(12_000)
    env = make_vec_env(ENV, n_envs=1, seed=1)
    rewards, _ = evaluate_policy(model, env, n_eval_episodes=5)
    assert float(np.mean(rewards)) > 100  # a random policy scores about 22
