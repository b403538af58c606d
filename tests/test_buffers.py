# SB3's buffers sample from numpy's global legacy generator; these tests seed it on purpose.
# ruff: noqa: NPY002
"""FrameStackReplayBuffer against SB3's ReplayBuffer, with a frame id in every pixel.

Every frame here is ``encode(frame_id)``: each pixel holds one byte of its id, so a stack that
mixes episodes, crosses the write cursor or is off by one decodes to the wrong ids. Frame id 0
is the all-zero frame (SB3's VecFrameStack padding); real frames get ids from 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

from custom.buffers import FrameStackReplayBuffer, n_step_returns

SHAPE = (4, 5, 7)  # (n_stack, H, W): small, and H != W so that a transposed frame shows
RESET_MODES = ("repeat", "first", "zeros", "fresh")


def encode(frame_id: int, hw: tuple[int, ...] = SHAPE[1:]) -> np.ndarray:
    """The frame whose pixel k holds byte k % 4 of ``frame_id`` (little endian)."""
    shifts = 8 * (np.arange(int(np.prod(hw))) % 4)
    return ((frame_id >> shifts) & 0xFF).astype(np.uint8).reshape(hw)


def decode(frame: np.ndarray) -> int:
    """The id of a frame made by :func:`encode`; fails on any other frame."""
    flat = frame.reshape(-1)
    frame_id = int(sum(int(flat[k]) << (8 * k) for k in range(4)))
    assert np.array_equal(frame, encode(frame_id, frame.shape)), "not a frame-id frame"
    return frame_id


def test_encode_decode_round_trip() -> None:
    for frame_id in (0, 1, 255, 256, 70_000, 2**31 + 5):
        assert decode(encode(frame_id)) == frame_id
    mixed = encode(300)
    mixed[2, 3] = encode(300 + 256)[2, 3]  # pixel 17 holds byte 1: 1 vs 2
    with pytest.raises(AssertionError):
        decode(mixed)


class FrameIdStream:
    """n_envs frame-stacking envs as SB3's DQN hands them to ``ReplayBuffer.add``.

    Inside an episode each obs is the previous one shifted by one new frame. An episode start
    is one of ``reset_mode``: ``repeat`` (the new frame n_stack times, our Atari wrapper's
    default), ``first`` (the env's first frame ever, repeated: the reference's life-loss
    reset), ``zeros`` (zero padding then the new frame, SB3's VecFrameStack) or ``fresh``
    (n_stack new frames). Episodes end after 1 to ``max_len`` steps, half of them truncated.
    """

    def __init__(
        self,
        n_envs: int,
        reset_mode: str,
        n_stack: int = SHAPE[0],
        max_len: int = 12,
        seed: int = 0,
    ):
        self.n_envs, self.reset_mode, self.n_stack, self.max_len = (
            n_envs,
            reset_mode,
            n_stack,
            max_len,
        )
        self.rng = np.random.default_rng(seed)
        self.last_id = 0
        self.first = [self._new_id() for _ in range(n_envs)]
        self.stacks = [self._reset_stack(env) for env in range(n_envs)]
        self.left = self.rng.integers(1, max_len + 1, size=n_envs)
        self.episodes = n_envs

    def _new_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def _reset_stack(self, env: int) -> list[int]:
        n = self.n_stack
        if self.reset_mode == "repeat":
            return [self._new_id()] * n
        if self.reset_mode == "first":
            return [self.first[env]] * n
        if self.reset_mode == "zeros":
            return [0] * (n - 1) + [self._new_id()]
        assert self.reset_mode == "fresh"
        return [self._new_id() for _ in range(n)]

    def step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
        """One ``add`` call's arguments: obs, next_obs, actions, rewards, dones, infos."""
        obs, next_obs, infos = [], [], []
        dones = np.zeros(self.n_envs, dtype=bool)
        for env in range(self.n_envs):
            obs.append(self.stacks[env])
            next_obs.append([*self.stacks[env][1:], self._new_id()])
            self.left[env] -= 1
            dones[env] = self.left[env] == 0
            infos.append({"TimeLimit.truncated": bool(dones[env] and self.rng.random() < 0.5)})
            if dones[env]:
                self.stacks[env] = self._reset_stack(env)
                self.left[env] = self.rng.integers(1, self.max_len + 1)
                self.episodes += 1
            else:
                self.stacks[env] = next_obs[-1]
        actions = self.rng.integers(0, 3, size=(self.n_envs, 1))
        rewards = self.rng.normal(size=self.n_envs).astype(np.float32)
        return self._pixels(obs), self._pixels(next_obs), actions, rewards, dones, infos

    def _pixels(self, stacks: list[list[int]]) -> np.ndarray:
        return np.array([[encode(i, SHAPE[1:]) for i in stack] for stack in stacks])


def make_pair(
    capacity: int, n_envs: int, n_stack: int = SHAPE[0], **kwargs: Any
) -> tuple[FrameStackReplayBuffer, ReplayBuffer]:
    obs_space = spaces.Box(0, 255, (n_stack, *SHAPE[1:]), dtype=np.uint8)
    act_space = spaces.Discrete(3)
    timeouts = kwargs.pop("handle_timeout_termination", True)
    ours = FrameStackReplayBuffer(
        capacity, obs_space, act_space, "cpu", n_envs, handle_timeout_termination=timeouts, **kwargs
    )
    ref = ReplayBuffer(
        capacity, obs_space, act_space, "cpu", n_envs, handle_timeout_termination=timeouts
    )
    return ours, ref


def feed(stream: FrameIdStream, buffers: tuple[ReplayBuffer, ...], n_steps: int) -> None:
    for _ in range(n_steps):
        args = stream.step()
        for buffer in buffers:
            buffer.add(*args)


def all_pairs(buffer: ReplayBuffer) -> tuple[np.ndarray, np.ndarray]:
    rows, envs = np.meshgrid(np.arange(buffer.size()), np.arange(buffer.n_envs), indexing="ij")
    return rows.ravel(), envs.ravel()


def assert_same_samples(a: ReplayBufferSamples, b: ReplayBufferSamples) -> None:
    for name in ("observations", "actions", "next_observations", "dones", "rewards", "discounts"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is y is None, name
            continue
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert th.equal(x, y), name


def assert_valid_rows_match(ours: FrameStackReplayBuffer, ref: ReplayBuffer) -> np.ndarray:
    """Every valid (row, env) of ``ours`` rebuilds the transition ``ref`` stored there."""
    assert (ours.pos, ours.full) == (ref.pos, ref.full)
    rows, envs = all_pairs(ours)
    valid = ours.is_valid(rows, envs)
    rows, envs = rows[valid], envs[valid]
    got = ours._transitions(rows, envs, None)
    timeouts = ref.timeouts[rows, envs]
    expected = ReplayBufferSamples(
        *map(
            th.tensor,
            (
                ref.observations[rows, envs],
                ref.actions[rows, envs],
                ref.next_observations[rows, envs],
                (ref.dones[rows, envs] * (1 - timeouts)).reshape(-1, 1),
                ref.rewards[rows, envs].reshape(-1, 1),
            ),
        )
    )
    assert_same_samples(got, expected)
    return valid


@pytest.mark.parametrize("reset_mode", RESET_MODES)
@pytest.mark.parametrize("n_envs", [1, 4])
def test_every_row_rebuilds_what_was_added(reset_mode: str, n_envs: int) -> None:
    # Enough headroom for n_stack new frames every episode (the "fresh" worst case): every
    # stored row must stay valid, before the buffer is full, when full and after wrapping.
    ours, ref = make_pair(40 * n_envs, n_envs, frame_headroom=2.0)
    stream = FrameIdStream(n_envs, reset_mode, seed=n_envs)
    for n_steps in (1, 5, 34, 1, 13, 57, 23):
        feed(stream, (ours, ref), n_steps)
        valid = assert_valid_rows_match(ours, ref)
        assert valid.all()
    assert ours.full and ref.dones.any() and ref.timeouts.any()
    assert (ref.dones * (1 - ref.timeouts)).any(), "no terminal that is not a timeout"


def test_each_frame_is_stored_once() -> None:
    ours, ref = make_pair(1000, 2)
    stream = FrameIdStream(2, "repeat", max_len=50)
    feed(stream, (ours, ref), 400)
    # One frame per transition, plus one per episode start (its repeated new frame).
    assert ours.frames_written == 2 * 400 + stream.episodes
    assert_valid_rows_match(ours, ref)


def test_single_frame_observations() -> None:
    ours, ref = make_pair(30, 2, n_stack=1)
    feed(FrameIdStream(2, "fresh", n_stack=1), (ours, ref), 47)
    assert assert_valid_rows_match(ours, ref).all()


@pytest.mark.parametrize("handle_timeout_termination", [True, False])
def test_terminals_and_timeouts_as_sb3(handle_timeout_termination: bool) -> None:
    ours, ref = make_pair(200, 2, handle_timeout_termination=handle_timeout_termination)
    feed(FrameIdStream(2, "repeat", max_len=4), (ours, ref), 100)
    rows, envs = all_pairs(ours)
    dones = ours._transitions(rows, envs, None).dones.numpy().ravel()
    truncated = ref.timeouts[rows, envs] > 0
    assert truncated.any() == handle_timeout_termination  # SB3 records them only if asked
    assert np.array_equal(dones, (ref.dones[rows, envs] > 0) & ~truncated)
    assert dones.any() and (ref.dones[rows, envs] > dones).any() == handle_timeout_termination
    assert_valid_rows_match(ours, ref)


@pytest.mark.parametrize("n_envs", [1, 4])
@pytest.mark.parametrize("n_steps", [37, 250])  # not yet full; wrapped around several times
def test_sample_equals_sb3_and_draws_the_same_random_numbers(n_envs: int, n_steps: int) -> None:
    ours, ref = make_pair(60 * n_envs, n_envs, frame_headroom=2.0)
    feed(FrameIdStream(n_envs, "first"), (ours, ref), n_steps)
    for seed in range(5):
        np.random.seed(seed)
        got = ours.sample(32)
        after_ours = np.random.randint(2**31)
        np.random.seed(seed)
        expected = ref.sample(32)
        assert np.random.randint(2**31) == after_ours
        assert_same_samples(got, expected)
        # Same indices through the private SB3 entry point too.
        inds = np.random.default_rng(seed).integers(0, ref.size(), size=16)
        np.random.seed(seed)
        got = ours._get_samples(inds)
        np.random.seed(seed)
        assert_same_samples(got, ref._get_samples(inds))


def stored_transitions(ref: ReplayBuffer) -> set[tuple]:
    rows, envs = all_pairs(ref)
    return {
        (
            tuple(decode(f) for f in ref.observations[row, env]),
            tuple(decode(f) for f in ref.next_observations[row, env]),
            int(ref.actions[row, env, 0]),
            float(ref.rewards[row, env]),
        )
        for row, env in zip(rows, envs, strict=True)
    }


@pytest.mark.parametrize("reset_mode", ["repeat", "fresh"])
def test_never_samples_a_row_whose_frames_were_overwritten(reset_mode: str) -> None:
    # No headroom and 1-to-3-step episodes: episode starts overwrite the oldest rows' frames
    # well before the write cursor reaches them.
    ours, ref = make_pair(400 * 2, 2, frame_headroom=0.0)
    stream = FrameIdStream(2, reset_mode, max_len=3)
    feed(stream, (ours, ref), 700)
    valid = assert_valid_rows_match(ours, ref)
    assert 0 < valid.sum() < len(valid)
    # Invalid rows are the oldest ones: per env, once valid in age order, valid for good.
    _, envs = all_pairs(ours)
    age_order = (np.arange(ours.buffer_size) + ours.pos) % ours.buffer_size
    for env in range(2):
        by_age = valid[envs == env][age_order]
        assert np.all(np.diff(by_age.astype(int)) >= 0)

    stored = stored_transitions(ref)
    np.random.seed(0)
    for _ in range(30):
        batch = ours.sample(64)
        for obs, next_obs, action, reward in zip(
            batch.observations.numpy(),
            batch.next_observations.numpy(),
            batch.actions.numpy(),
            batch.rewards.numpy(),
            strict=True,
        ):
            key = (
                tuple(decode(f) for f in obs),
                tuple(decode(f) for f in next_obs),
                int(action[0]),
                float(reward[0]),
            )
            assert key in stored
    gone = np.flatnonzero((~valid.reshape(-1, 2)).all(axis=1))
    assert len(gone) > 0
    with pytest.raises(IndexError):
        ours._get_samples(gone)


def test_save_load_round_trip_then_continue(tmp_path: Path) -> None:
    ours, ref = make_pair(30 * 4, 4)
    stream = FrameIdStream(4, "zeros")
    feed(stream, (ours, ref), 45)
    save_to_pkl(tmp_path / "buffer.pkl", ours)
    loaded = load_from_pkl(tmp_path / "buffer.pkl")
    assert isinstance(loaded, FrameStackReplayBuffer)
    np.random.seed(1)
    expected = ours.sample(32)
    np.random.seed(1)
    assert_same_samples(loaded.sample(32), expected)
    # The loaded buffer continues the episodes in flight exactly as the original does.
    feed(stream, (ours, loaded, ref), 40)
    assert loaded.frames_written == ours.frames_written
    assert np.array_equal(loaded.frames, ours.frames)
    assert assert_valid_rows_match(loaded, ref).all()


def test_memory_per_transition_of_a_1m_breakout_buffer() -> None:
    # np.zeros does not touch the memory, so this costs nothing; the benchmark measures RSS.
    buffer = FrameStackReplayBuffer(
        1_000_000, spaces.Box(0, 255, (4, 84, 84), np.uint8), spaces.Discrete(4), "cpu"
    )
    assert buffer.nbytes / 1_000_000 <= 7200  # SB3: 56,468 bytes


def test_rejects_what_it_cannot_store() -> None:
    image = spaces.Box(0, 255, SHAPE, dtype=np.uint8)
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        FrameStackReplayBuffer(10, image, spaces.Discrete(3), optimize_memory_usage=True)
    with pytest.raises(ValueError, match="uint8 Box"):
        FrameStackReplayBuffer(10, spaces.Box(0, 1, SHAPE, np.float32), spaces.Discrete(3))
    with pytest.raises(ValueError, match="uint8 Box"):
        FrameStackReplayBuffer(10, spaces.Box(0, 255, (84, 84), np.uint8), spaces.Discrete(3))
    ours, _ = make_pair(10, 1)
    obs, next_obs, actions, rewards, dones, infos = FrameIdStream(1, "fresh").step()
    with pytest.raises(ValueError, match="shifted by one frame"):
        ours.add(obs, next_obs[:, ::-1], actions, rewards, dones, infos)


class FrameIdStackEnv(gym.Env):
    """An image env that stacks its own frames, as our Atari wrapper does.

    Reward 1 when the action equals the newest frame id mod 3; episodes end at random (and a
    TimeLimit truncates them); a reset stack is the new frame repeated.
    """

    observation_space = spaces.Box(0, 255, (4, 36, 36), dtype=np.uint8)
    action_space = spaces.Discrete(3)

    def __init__(self) -> None:
        self.frame_id = 0
        self.stack = np.zeros(self.observation_space.shape, dtype=np.uint8)

    def _frame(self) -> np.ndarray:
        self.frame_id += 1
        return encode(self.frame_id, (36, 36))

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.stack[:] = self._frame()
        return self.stack.copy(), {}

    def step(self, action: int) -> tuple:
        reward = float(action == self.frame_id % 3)
        self.stack = np.concatenate([self.stack[1:], self._frame()[None]])
        terminated = bool(self.np_random.random() < 0.04)
        return self.stack.copy(), reward, terminated, False, {}


def make_dqn(buffer_class: type[ReplayBuffer], buffer_size: int = 10_000) -> DQN:
    def make_env() -> gym.Env:
        return gym.wrappers.TimeLimit(FrameIdStackEnv(), max_episode_steps=30)

    env = make_vec_env(make_env, n_envs=2, seed=3)
    return DQN(
        "CnnPolicy",
        env,
        buffer_size=buffer_size,
        replay_buffer_class=buffer_class,
        learning_starts=300,
        train_freq=2,
        target_update_interval=200,
        batch_size=32,
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}},
        seed=7,
        device="cpu",
    )


@pytest.fixture
def one_torch_thread():
    """One thread: faster on a busy 2-core machine (8 ms vs 500 ms per update here)."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


@pytest.mark.usefixtures("one_torch_thread")
def test_dqn_trains_to_identical_parameters_with_either_buffer() -> None:
    frames = make_dqn(FrameStackReplayBuffer).learn(2000)
    stock = make_dqn(ReplayBuffer).learn(2000)
    buffer = frames.replay_buffer
    assert isinstance(buffer, FrameStackReplayBuffer) and not buffer.full
    assert buffer.timeouts.any() and (buffer.dones > buffer.timeouts).any()
    assert frames._n_updates == stock._n_updates > 0
    for (name, ours), (_, theirs) in zip(
        frames.policy.state_dict().items(), stock.policy.state_dict().items(), strict=True
    ):
        assert th.equal(ours, theirs), name
    first_conv = "q_net.features_extractor.cnn.0.weight"
    initial = make_dqn(ReplayBuffer, buffer_size=1).policy.state_dict()[first_conv]
    assert not th.equal(initial, frames.policy.state_dict()[first_conv])


def test_dqn_save_and_load_replay_buffer(tmp_path: Path) -> None:
    model = make_dqn(FrameStackReplayBuffer).learn(200)
    model.save_replay_buffer(tmp_path / "replay.pkl")
    other = make_dqn(FrameStackReplayBuffer, buffer_size=10)
    other.load_replay_buffer(tmp_path / "replay.pkl")
    saved, loaded = model.replay_buffer, other.replay_buffer
    assert isinstance(saved, FrameStackReplayBuffer)
    assert isinstance(loaded, FrameStackReplayBuffer)
    assert loaded.pos == saved.pos == 100
    np.random.seed(0)
    expected = saved.sample(32)
    np.random.seed(0)
    assert_same_samples(loaded.sample(32), expected)


def test_sb3_atari_stacking_with_zero_padding_and_life_loss() -> None:
    """Real Breakout frames through SB3's AtariWrapper, VecFrameStack and VecTransposeImage."""
    pytest.importorskip("ale_py")
    n_envs, steps = 2, 400
    venv = VecTransposeImage(
        VecFrameStack(
            make_atari_env(
                "BreakoutNoFrameskip-v4", n_envs, seed=0, env_kwargs={"max_episode_steps": 600}
            ),
            n_stack=4,
        )
    )
    obs_space, act_space = venv.observation_space, venv.action_space
    ours = FrameStackReplayBuffer(300 * n_envs, obs_space, act_space, "cpu", n_envs)
    ref = ReplayBuffer(300 * n_envs, obs_space, act_space, "cpu", n_envs)
    rng = np.random.default_rng(0)
    last_obs = venv.reset()
    assert isinstance(last_obs, np.ndarray)
    episodes = n_envs
    for _ in range(steps):
        actions = rng.integers(0, 4, size=n_envs)
        new_obs, rewards, dones, infos = venv.step(actions)
        assert isinstance(new_obs, np.ndarray)
        next_obs = new_obs.copy()  # as OffPolicyAlgorithm._store_transition
        for i, done in enumerate(dones):
            if done:
                next_obs[i] = infos[i]["terminal_observation"]
        episodes += int(dones.sum())
        for buffer in (ours, ref):
            buffer.add(last_obs, next_obs, actions, rewards, dones, infos)
        last_obs = new_obs
    venv.close()
    assert ours.full and ref.timeouts.any() and (ref.dones > ref.timeouts).any()
    assert assert_valid_rows_match(ours, ref).all()
    # An episode start costs a zero frame and its first frame; every other step one frame.
    assert ours.frames_written <= n_envs * steps + 2 * episodes


def make_n_step_pair(
    capacity: int, n_envs: int, n_steps: int, gamma: float = 0.9, **kwargs: Any
) -> tuple[FrameStackReplayBuffer, NStepReplayBuffer]:
    obs_space = spaces.Box(0, 255, SHAPE, dtype=np.uint8)
    args = (capacity, obs_space, spaces.Discrete(3), "cpu", n_envs)
    ours = FrameStackReplayBuffer(*args, n_steps=n_steps, gamma=gamma, **kwargs)
    timeouts = kwargs.get("handle_timeout_termination", True)
    ref = NStepReplayBuffer(
        *args, n_steps=n_steps, gamma=gamma, handle_timeout_termination=timeouts
    )
    return ours, ref


def assert_all_rows_match_n_step(ours: FrameStackReplayBuffer, ref: NStepReplayBuffer) -> None:
    """Every stored row and env, through SB3's own ``_get_samples``, env draws replayed."""
    rows = np.repeat(np.arange(ref.size()), 3)
    np.random.seed(11)
    envs = np.random.randint(0, ref.n_envs, size=rows.shape)  # what _get_samples draws
    np.random.seed(11)
    expected = ref._get_samples(rows)
    assert_same_samples(ours._transitions(rows, envs, None), expected)


@pytest.mark.parametrize("handle_timeout_termination", [True, False])
@pytest.mark.parametrize("n_envs", [1, 4])
@pytest.mark.parametrize("n_steps", [2, 5])
def test_n_step_samples_equal_sb3_n_step_buffer(
    n_steps: int, n_envs: int, handle_timeout_termination: bool
) -> None:
    # 1-to-6-step episodes, half truncated, life-loss style resets to the first frame: windows
    # hold terminals, timeouts, the newest row and the wrap-around of the ring.
    ours, ref = make_n_step_pair(
        30 * n_envs,
        n_envs,
        n_steps,
        frame_headroom=2.0,
        handle_timeout_termination=handle_timeout_termination,
    )
    stream = FrameIdStream(n_envs, "first", max_len=6, seed=n_steps)
    for chunk in (1, 2, 9, 25, 40, 3, 31):
        feed(stream, (ours, ref), chunk)
        assert_all_rows_match_n_step(ours, ref)
        np.random.seed(chunk)
        got = ours.sample(32)
        after_ours = np.random.randint(2**31)
        np.random.seed(chunk)
        assert_same_samples(got, ref.sample(32))
        assert np.random.randint(2**31) == after_ours
    assert ours.full and ref.timeouts.any() == handle_timeout_termination
    assert (ref.dones * (1 - ref.timeouts)).any()
    assert np.array_equal(ref.timeouts, ours.timeouts)  # SB3 restored it; ours never wrote


def test_n_step_windows_of_a_hand_made_stream() -> None:
    """Returns, discounts and dones by hand: a terminal, a timeout and the newest row."""
    ours, _ = make_n_step_pair(10, 1, n_steps=3, gamma=0.5)
    stream = FrameIdStream(1, "repeat", max_len=1000)
    ends = {2: "terminal", 5: "timeout"}
    for step in range(8):
        obs, next_obs, actions, _, _, _ = stream.step()
        kind = ends.get(step)
        infos = [{"TimeLimit.truncated": kind == "timeout"}]
        ours.add(
            obs, next_obs, actions, np.array([step + 1.0]), np.array([kind is not None]), infos
        )
    rows = np.arange(8)
    got = ours._transitions(rows, np.zeros(8, dtype=int), None)
    # rewards 1..8; row 2 ends an episode by a terminal, row 5 by a timeout, row 7 is newest.
    expected_returns = [
        1 + 2 / 2 + 3 / 4,
        2 + 3 / 2,
        3,
        4 + 5 / 2 + 6 / 4,
        5 + 6 / 2,
        6,
        7 + 8 / 2,
        8,
    ]
    expected_lengths = [3, 2, 1, 3, 2, 1, 2, 1]
    expected_dones = [1, 1, 1, 0, 0, 0, 0, 0]
    assert got.rewards.ravel().tolist() == expected_returns
    assert got.discounts is not None
    assert got.discounts.ravel().tolist() == [0.5**k for k in expected_lengths]
    assert got.dones.ravel().tolist() == expected_dones
    last_rows = np.minimum(rows + np.array(expected_lengths) - 1, 7)
    refs = ours.frame_refs[last_rows, 0, 1:]
    assert th.equal(got.next_observations, th.as_tensor(ours.frames[refs % ours.n_frames]))


def test_n_step_returns_only_reads_the_buffer() -> None:
    ours, ref = make_n_step_pair(20, 2, n_steps=4)
    feed(FrameIdStream(2, "repeat", max_len=5), (ours, ref), 27)
    before = ref.timeouts.copy()
    n_step_returns(ref, np.arange(ref.size()), np.ones(ref.size(), dtype=int), 4, 0.9)
    assert np.array_equal(ref.timeouts, before)


def test_n_step_never_samples_a_window_whose_frames_were_overwritten() -> None:
    ours, ref = make_n_step_pair(400 * 2, 2, n_steps=3, frame_headroom=0.0)
    feed(FrameIdStream(2, "fresh", max_len=3), (ours, ref), 700)
    rows, envs = all_pairs(ours)
    valid = ours.is_valid(rows, envs)
    assert 0 < valid.sum() < len(valid)
    # SB3's windows of every stored (row, env): its env draws replayed cover them all.
    rows = np.repeat(np.arange(ref.size()), 24)
    np.random.seed(5)
    envs = np.random.randint(0, 2, size=rows.shape)
    assert len(set(zip(rows, envs, strict=True))) == 2 * ref.size()
    np.random.seed(5)
    windows = ref._get_samples(rows)
    stored = set(zip(*(tensor_keys(windows)), strict=True))
    np.random.seed(3)
    for _ in range(10):
        assert set(zip(*(tensor_keys(ours.sample(64))), strict=True)) <= stored


def tensor_keys(batch: ReplayBufferSamples) -> tuple[list, ...]:
    """Hashable rows of a batch: obs, next_obs, reward, done, discount."""
    assert batch.discounts is not None
    fields = (batch.observations, batch.next_observations, batch.rewards, batch.dones)
    return tuple([row.numpy().tobytes() for row in field] for field in (*fields, batch.discounts))


@pytest.mark.parametrize("n_steps", [0, -1, 2.0, True])
def test_rejects_bad_n_steps(n_steps: Any) -> None:
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        make_n_step_pair(10, 1, n_steps=n_steps)
