"""A replay buffer that stores each frame of stacked image observations once.

SB3's :class:`~stable_baselines3.common.buffers.ReplayBuffer` keeps ``obs`` and ``next_obs`` as
full ``(n_stack, H, W)`` stacks: 56 KB per Atari transition, 56 GB for a 1M replay. Within an
episode each stack is the previous one shifted by one frame, so all but one frame of every
stack is a copy. Like Dopamine's ``OutOfGraphReplayBuffer``
(``dopamine/replay_memory/circular_replay_buffer.py``) this buffer stores single frames and
rebuilds stacks when sampling, and it excludes, explicitly, indices whose frames are gone.

Unlike Dopamine it does not zero-pad stacks at episode starts nor drop the terminal frame:
every stack is rebuilt exactly as the environment produced it, so a sampled batch equals SB3's
bit for bit (timeouts included, the pitfall of SB3's ``optimize_memory_usage``, SB3 #934).

n-step returns (``n_steps > 1``) follow SB3's
:class:`~stable_baselines3.common.buffers.NStepReplayBuffer` (:func:`n_step_returns` is its
maths with the env indices given), so the two memories train the same targets.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class NStepReturns(NamedTuple):
    """What an n-step window adds to a transition, as numpy arrays (see :func:`n_step_returns`).

    :param last_rows: row of the window's last transition, whose ``next_obs`` is bootstrapped
    :param rewards: discounted sum of the window's rewards, (batch, 1) float32
    :param dones: whether the window ends in a terminal that is not a timeout, (batch, 1)
    :param discounts: ``gamma ** k``, k the window's length, (batch, 1) float32
    """

    last_rows: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    discounts: np.ndarray


def n_step_returns(
    buffer: ReplayBuffer,
    batch_inds: np.ndarray,
    env_indices: np.ndarray,
    n_steps: int,
    gamma: float,
    env: VecNormalize | None = None,
) -> NStepReturns:
    """n-step returns of the transitions at ``(batch_inds, env_indices)``, exactly as SB3's.

    SB3 2.9's ``NStepReplayBuffer._get_samples`` draws the env indices itself; this is the same
    computation, operation for operation (so float32 results are equal bit for bit), on given
    indices, so that a prioritized or frame-once memory can use it. A window stops at the first
    done or timeout, and at the newest row (``pos - 1``), which SB3 treats as a timeout unless it
    is a done so that no window runs into the oldest data. SB3 marks that row by writing into
    ``buffer.timeouts`` and restoring it; here the sampled copies are changed instead, and the
    buffer is only read.

    :param buffer: any memory with SB3's ``rewards``, ``dones``, ``timeouts`` (rows, envs),
        ``pos`` and ``buffer_size``
    :param batch_inds: first row of each window
    :param env_indices: env of each window, same shape
    :param n_steps: window length (>= 1)
    :param gamma: discount factor
    :param env: VecNormalize whose reward normalisation applies, as in SB3
    :return: the windows' last rows, returns, dones and bootstrap discounts
    """
    rows = (batch_inds[:, None] + np.arange(n_steps).reshape(1, -1)) % buffer.buffer_size
    envs = env_indices[:, None]
    rewards_seq = buffer._normalize_reward(buffer.rewards[rows, envs], env)
    dones_seq = buffer.dones[rows, envs]
    truncated_seq = buffer.timeouts[rows, envs]  # a copy (fancy indexing): ours to change
    newest = rows == (buffer.pos - 1) % buffer.buffer_size
    truncated_seq[newest] = np.logical_or(truncated_seq, np.logical_not(dones_seq))[newest]

    done_or_truncated = np.logical_or(dones_seq, truncated_seq)
    done_idx = np.where(
        done_or_truncated.any(axis=1), done_or_truncated.argmax(axis=1), n_steps - 1
    )
    mask = np.arange(n_steps).reshape(1, -1) <= done_idx[:, None]
    target_q_discounts = gamma ** mask.sum(axis=1, keepdims=True).astype(np.float32)
    discounts = gamma ** np.arange(n_steps, dtype=np.float32).reshape(1, -1)
    n_step_rewards = (rewards_seq * discounts * mask).sum(axis=1, keepdims=True)

    last = np.arange(len(batch_inds))
    next_dones = dones_seq[last, done_idx][:, None].astype(np.float32)
    next_timeouts = truncated_seq[last, done_idx][:, None].astype(np.float32)
    return NStepReturns(
        last_rows=(batch_inds + done_idx) % buffer.buffer_size,
        rewards=n_step_rewards,
        dones=next_dones * (1.0 - next_timeouts),
        discounts=target_q_discounts,
    )


class FrameStackReplayBuffer(ReplayBuffer):
    """Drop-in :class:`ReplayBuffer` for channel-first stacked uint8 images ``(n_stack, H, W)``.

    Memory layout: one ring of single frames ``(n_frames, H, W)`` shared by all envs, plus, per
    transition row and env, ``n_stack + 1`` absolute frame numbers (``frame_refs``): the first
    ``n_stack`` give ``obs``, the last ``n_stack`` give ``next_obs``. Frame number ``k`` lives in
    slot ``k % n_frames`` and is still there while ``k >= frames_written - n_frames``.

    Adding a transition writes one frame (the newest of ``next_obs``) when ``obs`` continues the
    env's previous ``next_obs``, which is what happens inside an episode. Otherwise (the first
    transition, an episode start, or anything the env did not produce by shifting) ``obs`` is
    written in full, as produced: repeated first frames, zero padding or stale frames alike.
    A frame equal to the newest stored one shares its slot, so a reset stack of one repeated
    frame costs a single frame, and zero padding one zero frame.

    Episode starts therefore cost about one extra frame each. The ring holds
    ``frame_headroom`` more frames than rows for them; when episodes are shorter than about
    ``1 / frame_headroom`` steps, the oldest rows lose frames before the write cursor reaches
    them. Such rows are never sampled: :meth:`sample` redraws them (see :meth:`is_valid`).

    Sampling draws indices exactly as SB3's :meth:`ReplayBuffer.sample` does (one ``randint``
    for rows, one for envs), so while no drawn index is invalid, e.g. before the buffer is
    full, the global numpy random stream is consumed identically and training runs match
    SB3's buffer parameter for parameter (and, with ``n_steps > 1``, SB3's
    ``NStepReplayBuffer``).

    :param buffer_size: Max number of transitions in the buffer (over all envs, as in SB3).
    :param observation_space: ``Box`` of dtype uint8 and shape ``(n_stack, H, W)``.
    :param action_space: Action space.
    :param device: PyTorch device of the sampled tensors.
    :param n_envs: Number of parallel environments.
    :param optimize_memory_usage: Not supported (this buffer already stores each frame once);
        must be False. Accepted because SB3's off-policy algorithms always pass it.
    :param handle_timeout_termination: As in SB3: a done with ``info["TimeLimit.truncated"]`` is
        sampled as not done, so the target bootstraps from ``next_obs``.
    :param frame_headroom: Extra frame slots for episode starts, as a fraction of the number of
        transitions. 0.01 costs 1 % more memory and keeps every row sampleable while episodes
        last 100 steps or more on average.
    :param n_steps: Length of the return's window, >= 1. Above 1 a sample holds the discounted
        sum of up to ``n_steps`` rewards, the ``next_obs`` the window ends on and the bootstrap
        discount ``gamma ** k`` in ``discounts``, exactly as SB3's ``NStepReplayBuffer``. SB3's
        off-policy algorithms do not pass their ``n_steps`` to a custom buffer class: give it in
        ``replay_buffer_kwargs`` (``custom.dqn.TargetDQN`` refuses a mismatch).
    :param gamma: Discount factor of the n-step return; the model's ``gamma``.
    """

    frames: np.ndarray
    frame_refs: np.ndarray

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        frame_headroom: float = 0.01,
        n_steps: int = 1,
        gamma: float = 0.99,
    ):
        if optimize_memory_usage:
            raise ValueError(
                "FrameStackReplayBuffer does not support optimize_memory_usage=True: it already "
                "stores each frame once. Set optimize_memory_usage=False."
            )
        if not (
            isinstance(observation_space, spaces.Box)
            and observation_space.dtype == np.uint8
            and len(observation_space.shape) == 3
        ):
            raise ValueError(
                "FrameStackReplayBuffer needs a uint8 Box observation space of shape "
                f"(n_stack, H, W), got {observation_space}. Use SB3's ReplayBuffer instead."
            )
        if frame_headroom < 0:
            raise ValueError(f"frame_headroom must be >= 0, got {frame_headroom}.")
        check_n_steps(n_steps)
        # ReplayBuffer.__init__ would allocate full obs/next_obs arrays (and warn about their
        # size); only the base bookkeeping is wanted.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        self.frame_headroom = frame_headroom
        self.n_steps = n_steps
        self.gamma = gamma
        self.n_stack = self.obs_shape[0]

        rows = self.buffer_size * n_envs
        # An add writes at most n_stack + 1 frames per env, and the newest row references only
        # frames of the last n_stack + 2 adds; these extra slots keep them whatever the headroom,
        # so the newest row is always valid and obs can always be compared with the previous
        # next_obs.
        extra = (self.n_stack + 2) * n_envs * (self.n_stack + 1)
        self.n_frames = int(np.ceil(rows * (1 + frame_headroom))) + extra
        self.frames = np.zeros((self.n_frames, *self.obs_shape[1:]), dtype=np.uint8)
        self.frame_refs = np.zeros((self.buffer_size, n_envs, self.n_stack + 1), dtype=np.int64)
        self.actions = np.zeros(
            (self.buffer_size, n_envs, self.action_dim),
            dtype=self._maybe_cast_dtype(action_space.dtype),
        )
        self.rewards = np.zeros((self.buffer_size, n_envs), dtype=np.float32)
        self.dones = np.zeros((self.buffer_size, n_envs), dtype=np.float32)
        self.timeouts = np.zeros((self.buffer_size, n_envs), dtype=np.float32)
        self._reset_frames()

    def _reset_frames(self) -> None:
        self.frames_written = 0
        # Frame numbers of each env's latest next_obs; -1 until the env's first add.
        self._last_refs = np.full((self.n_envs, self.n_stack), -1, dtype=np.int64)

    def reset(self) -> None:
        """Forget every stored transition (the arrays keep their memory)."""
        super().reset()
        self._reset_frames()

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays (frames, references, actions, rewards, flags)."""
        arrays = (self.frames, self.frame_refs, self.actions, self.rewards, self.dones)
        return sum(a.nbytes for a in arrays) + self.timeouts.nbytes

    def _write_frames(self, frames: np.ndarray) -> np.ndarray:
        """Write ``frames`` (k, H, W) at the ring's cursor and return their frame numbers."""
        refs = self.frames_written + np.arange(len(frames), dtype=np.int64)
        self.frames[refs % self.n_frames] = frames
        self.frames_written += len(frames)
        return refs

    def _write_stack(self, stack: np.ndarray) -> np.ndarray:
        """Write a stack that continues nothing stored; a frame equal to the newest is shared."""
        refs = np.empty(self.n_stack, dtype=np.int64)
        for i, frame in enumerate(stack):
            newest = self.frames_written - 1
            if newest >= 0 and np.array_equal(frame, self.frames[newest % self.n_frames]):
                refs[i] = newest
            else:
                refs[i] = self._write_frames(frame[None])[0]
        return refs

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store one step of every env; see :meth:`ReplayBuffer.add`.

        :raises ValueError: if some ``next_obs`` is not its ``obs`` shifted by one frame; such a
            pair cannot be rebuilt from ``n_stack + 1`` frames.
        """
        obs = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))
        next_obs = np.asarray(next_obs).reshape((self.n_envs, *self.obs_shape))
        if not np.array_equal(next_obs[:, :-1], obs[:, 1:]):
            raise ValueError(
                "FrameStackReplayBuffer needs next_obs to be obs shifted by one frame "
                "(next_obs[:-1] == obs[1:]) for every env; check the frame stacking wrapper, "
                "or use SB3's ReplayBuffer for this environment."
            )
        # Inside an episode obs is the previous next_obs: reuse its frames (still in the ring,
        # see `extra` in __init__).
        started = self._last_refs[:, 0] >= 0
        previous = self.frames[self._last_refs % self.n_frames]
        continues = started & (obs == previous).reshape(self.n_envs, -1).all(axis=1)
        obs_refs = self._last_refs.copy()
        for env_idx in np.flatnonzero(~continues):
            obs_refs[env_idx] = self._write_stack(obs[env_idx])
        new_refs = self._write_frames(next_obs[:, -1])

        self.frame_refs[self.pos] = np.concatenate([obs_refs, new_refs[:, None]], axis=1)
        self._last_refs = self.frame_refs[self.pos, :, 1:].copy()
        self.actions[self.pos] = np.asarray(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = np.asarray(reward)
        self.dones[self.pos] = np.asarray(done)
        if self.handle_timeout_termination:
            self.timeouts[self.pos] = [info.get("TimeLimit.truncated", False) for info in infos]

        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def is_valid(self, batch_inds: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        """Which (row, env) transitions can be rebuilt: stored, and all their frames still there.

        An n-step window is valid when its first row is: per env, a later row references no
        older frame than an earlier one (a row continues its predecessor's frames or writes
        new ones), and a window never runs past the newest row.

        :param batch_inds: Row indices, each in ``[0, size())``.
        :param env_indices: Env indices, same shape as ``batch_inds``.
        :return: Boolean array of the same shape.
        """
        oldest_kept = self.frames_written - self.n_frames
        return self.frame_refs[batch_inds, env_indices].min(axis=-1) >= oldest_kept

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """Sample ``batch_size`` valid transitions uniformly.

        Draws rows and envs as SB3 does; the rare invalid draws (rows whose frames were
        overwritten, see the class docstring) are redrawn, like Dopamine's rejection of
        invalid indices.

        :param batch_size: Number of transitions.
        :param env: Associated VecEnv, to normalize observations and rewards when sampling.
        :return: The transitions as tensors on ``self.device``.
        """
        upper_bound = self.buffer_size if self.full else self.pos
        batch_inds = np.random.randint(0, upper_bound, size=batch_size)  # noqa: NPY002
        env_indices = self._draw_envs(batch_size)
        invalid = ~self.is_valid(batch_inds, env_indices)
        while invalid.any():
            n_invalid = int(invalid.sum())
            batch_inds[invalid] = np.random.randint(0, upper_bound, size=n_invalid)  # noqa: NPY002
            env_indices[invalid] = self._draw_envs(n_invalid)
            invalid = ~self.is_valid(batch_inds, env_indices)
        return self._transitions(batch_inds, env_indices, env)

    def _draw_envs(self, size: int) -> np.ndarray:
        # numpy's global legacy generator, as SB3's buffers: same seed, same draws.
        return np.random.randint(0, high=self.n_envs, size=(size,))  # noqa: NPY002

    def _get_samples(
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> ReplayBufferSamples:
        """Transitions at ``batch_inds``, envs drawn as in SB3's ``_get_samples``.

        :raises IndexError: if some drawn (row, env) is not valid.
        """
        env_indices = self._draw_envs(len(batch_inds))
        if not self.is_valid(batch_inds, env_indices).all():
            raise IndexError("Some requested transitions have frames that were overwritten.")
        return self._transitions(batch_inds, env_indices, env)

    def _transitions(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> ReplayBufferSamples:
        """The transitions at given (row, env) pairs, all valid, as tensors on ``self.device``."""
        if self.n_steps > 1:
            return self._n_step_transitions(batch_inds, env_indices, env)
        # One gather of n_stack + 1 frames per transition; obs and next_obs are views of it.
        stacks = self.frames[self.frame_refs[batch_inds, env_indices] % self.n_frames]
        data = (
            self._normalize_obs(stacks[:, :-1], env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(stacks[:, 1:], env),
            # As SB3: only dones that are not timeouts.
            (
                self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
            ).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        # Every array above is a fresh result of fancy indexing or arithmetic: wrap it without
        # another copy (on a GPU, as_tensor still copies to the device).
        tensors = (self.to_torch(array, copy=False) for array in data)  # type: ignore[arg-type]
        return ReplayBufferSamples(*tensors)

    def _n_step_transitions(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> ReplayBufferSamples:
        returns = n_step_returns(self, batch_inds, env_indices, self.n_steps, self.gamma, env)
        obs_refs = self.frame_refs[batch_inds, env_indices, :-1]
        next_refs = self.frame_refs[returns.last_rows, env_indices, 1:]
        data = (
            self._normalize_obs(self.frames[obs_refs % self.n_frames], env),
            self.actions[batch_inds, env_indices],
            self._normalize_obs(self.frames[next_refs % self.n_frames], env),
            returns.dones,
            returns.rewards,
            returns.discounts,
        )
        tensors = (self.to_torch(array, copy=False) for array in data)  # type: ignore[arg-type]
        return ReplayBufferSamples(*tensors)


def check_n_steps(n_steps: int) -> None:
    """Raise a one-line ValueError unless ``n_steps`` is an int >= 1 (1: one-step returns)."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
