"""Proportional prioritized replay (Schaul et al. 2016) on both replay memories, with n-step.

A transition ``i`` is drawn with probability ``P(i) = p_i^alpha / sum_k p_k^alpha``, where the
raw priority ``p`` is ``|TD error| + eps`` of its last update, and a new transition gets the
largest ``p`` seen so far, so that it is replayed at least once. Its sampled loss is weighted by
``w_i = (N P(i))^-beta / max_j w_j`` (the max over the batch, as Dopamine does), beta annealed
linearly by env steps. Sampling is stratified: one uniform draw in each of ``batch_size`` equal
segments of the total, as in the paper and Dopamine.

:class:`PrioritizedReplay` is the sampler; it composes with a memory that can gather
transitions at given (row, env) pairs: SB3's standard memory (:class:`PrioritizedReplayBuffer`)
or the frame-once one (:class:`PrioritizedFrameStackReplayBuffer`), both with or without n-step
returns. A leaf of the sum tree is one (row, env) pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from custom.buffers import FrameStackReplayBuffer, check_n_steps, n_step_returns
from custom.schedules import HoldThenLinear
from custom.sum_tree import SumTree


class PrioritizedReplayBufferSamples(NamedTuple):
    """SB3's :class:`ReplayBufferSamples` fields, in its order, plus what prioritization adds.

    :param weights: importance weights, float32 (batch, 1), max 1
    :param indices: sampled leaves (``row * n_envs + env``), what
        :meth:`PrioritizedReplay.update_priorities` takes
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    weights: th.Tensor
    indices: np.ndarray


#: Option -> (test of a valid value, what the one-line error says it must be).
PRIORITY_OPTIONS: dict[str, tuple[Callable[[float], bool], str]] = {
    "alpha": (lambda v: v >= 0, ">= 0 (0: uniform sampling)"),
    "beta": (lambda v: 0 <= v <= 1, "in [0, 1] (1: full correction)"),
    "beta_final": (lambda v: 0 <= v <= 1, "in [0, 1] (1: full correction)"),
    "beta_anneal_steps": (lambda v: v >= 0, "an env step count >= 0"),
    "eps": (lambda v: v > 0, "> 0 (it keeps every priority positive)"),
}


def check_prioritized(**options: float) -> None:
    """Raise a one-line ValueError for the first option outside its range.

    :param options: any of :data:`PRIORITY_OPTIONS`'s names, with their values
    """
    for name, value in options.items():
        if name not in PRIORITY_OPTIONS:
            raise ValueError(f"unknown option {name}; known: {', '.join(PRIORITY_OPTIONS)}")
        valid, requirement = PRIORITY_OPTIONS[name]
        if not valid(value):  # also False for NaN
            raise ValueError(f"{name} must be {requirement}, got {value}")


class PrioritizedReplay(ReplayBuffer):
    """Prioritized sampling for a memory that implements ``_transitions(rows, envs, env)``.

    Put it first among the bases (``class X(PrioritizedReplay, SomeMemory)``): it adds the
    sum tree to the memory's constructor, gives every row that :meth:`add` writes the largest
    priority seen, and replaces :meth:`sample`. The model tells it the env step
    (:attr:`num_timesteps`, which ``custom.dqn.TargetDQN`` sets before each training call) and
    writes back priorities with :meth:`update_priorities` after each gradient step. Everything
    is plain attributes, so ``save_replay_buffer`` keeps the priorities and a loaded buffer
    samples as the saved one.

    :param args: the memory's positional arguments (``buffer_size``, spaces, ...)
    :param alpha: priority exponent, >= 0; 0 samples uniformly
    :param beta: importance-weight exponent at env step 0, in [0, 1]
    :param beta_final: exponent reached after ``beta_anneal_steps`` env steps, in [0, 1]
    :param beta_anneal_steps: env steps of the linear annealing (the run's length, usually)
    :param eps: added to ``|TD error|`` so that no transition's priority is 0, > 0
    :param kwargs: the memory's keyword arguments
    """

    #: The memory's gather of the transitions at given (row, env) pairs, all rebuildable.
    _transitions: Callable[[np.ndarray, np.ndarray, VecNormalize | None], ReplayBufferSamples]

    def __init__(
        self,
        *args: Any,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_final: float = 1.0,
        beta_anneal_steps: int = 0,
        eps: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        check_prioritized(
            alpha=alpha,
            beta=beta,
            beta_final=beta_final,
            beta_anneal_steps=beta_anneal_steps,
            eps=eps,
        )
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.eps = eps
        self.beta_schedule = HoldThenLinear(beta, beta_final, anneal_steps=beta_anneal_steps)
        #: Env steps taken by the model; beta is a function of it.
        self.num_timesteps = 0
        self.tree = SumTree(self.buffer_size * self.n_envs)
        #: Largest raw priority seen, the one new transitions get.
        self.max_priority = 1.0

    @property
    def beta(self) -> float:
        """The importance-weight exponent at the current env step."""
        return self.beta_schedule(self.num_timesteps)

    def reset(self) -> None:
        """Forget every transition and priority."""
        super().reset()
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.max_priority = 1.0

    def add(self, *args: Any, **kwargs: Any) -> None:
        """Store one step of every env (the memory's ``add``) at the largest priority seen."""
        row = self.pos
        super().add(*args, **kwargs)
        leaves = row * self.n_envs + np.arange(self.n_envs)
        self.tree.update(leaves, np.full(self.n_envs, self.max_priority**self.alpha))

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set the raw priorities ``p`` (before alpha) of sampled transitions.

        :param indices: the ``indices`` of a sample
        :param priorities: ``|TD error| + eps`` of each, positive and finite
        :raises ValueError: on a priority that is not positive and finite, e.g. a diverged loss
        """
        priorities = np.asarray(priorities, dtype=np.float64).reshape(-1)
        highest = float(priorities.max())
        # min and max propagate NaN, which fails both comparisons
        if not (priorities.min() > 0 and highest < np.inf):
            raise ValueError(
                "priorities must be positive and finite, got "
                f"{priorities[~(np.isfinite(priorities) & (priorities > 0))][:3]}: "
                "has the TD error diverged?"
            )
        self.max_priority = max(self.max_priority, highest)
        self.tree.update(indices, priorities**self.alpha)

    def priority_spread(self) -> float:
        """How many times more often a new transition is drawn than the average stored one.

        ``max_priority^alpha`` over the mean leaf value: it grows when a few TD errors explode.
        """
        stored = self.size() * self.n_envs
        return float(self.max_priority**self.alpha * stored / self.tree.total)

    def sample(  # type: ignore[override] # same fields as ReplayBufferSamples, and two more
        self, batch_size: int, env: VecNormalize | None = None
    ) -> PrioritizedReplayBufferSamples:
        """Draw ``batch_size`` transitions by priority, stratified, with importance weights.

        A draw that the memory cannot rebuild (a frame-once row whose frames were overwritten)
        gets priority 0 for good (until the row is written again) and is drawn again; each
        redraw removes one such row, so the loop ends.

        :param batch_size: Number of transitions.
        :param env: Associated VecEnv, to normalize observations and rewards when sampling.
        :return: the transitions, their importance weights and their leaf indices
        """
        total = self.tree.total
        uniforms = np.random.random_sample(batch_size)  # noqa: NPY002 - seeded as SB3's draws
        leaves = self.tree.find((np.arange(batch_size) + uniforms) * (total / batch_size))
        rows, envs = np.divmod(leaves, self.n_envs)
        invalid = self._invalid(rows, envs)
        while invalid is not None and invalid.any():
            self.tree.update(leaves[invalid], np.zeros(int(invalid.sum())))
            total = self.tree.total
            if total <= 0:
                raise RuntimeError("no stored transition can be rebuilt: nothing to sample")
            redraw = np.random.random_sample(int(invalid.sum())) * total  # noqa: NPY002
            leaves[invalid] = self.tree.find(redraw)
            rows, envs = np.divmod(leaves, self.n_envs)
            invalid = self._invalid(rows, envs)
        # (N P(i))^-beta / max_j (N P(j))^-beta, where P(i) = leaf_i / total: the same as
        # (min_j leaf_j / leaf_i)^beta, in fewer numpy calls (this is per gradient step)
        sampled = self.tree.levels[0][leaves]
        weights = np.power(sampled.min() / sampled, self.beta, dtype=np.float32).reshape(-1, 1)
        return PrioritizedReplayBufferSamples(
            *self._transitions(rows, envs, env),
            weights=self.to_torch(weights, copy=False),
            indices=leaves,
        )

    def _invalid(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray | None:
        """Which (row, env) pairs the memory cannot rebuild; None: it can rebuild every stored
        one (the default, which spares the check on every batch)."""
        return None


class PrioritizedReplayBuffer(PrioritizedReplay):
    """Prioritized replay on SB3's standard memory (full ``obs`` and ``next_obs`` per row).

    Samples equal SB3's ``ReplayBuffer`` (``n_steps=1``) or ``NStepReplayBuffer`` transitions
    at the drawn (row, env) pairs. ``optimize_memory_usage`` is refused, as SB3's
    ``NStepReplayBuffer`` does; ``FrameStackReplayBuffer`` is the memory-saving choice.

    :param args: ``ReplayBuffer``'s positional arguments
    :param n_steps: length of the return's window, >= 1 (as ``FrameStackReplayBuffer``)
    :param gamma: discount factor of the n-step return; the model's ``gamma``
    :param kwargs: :class:`PrioritizedReplay`'s and ``ReplayBuffer``'s keyword arguments
    """

    def __init__(self, *args: Any, n_steps: int = 1, gamma: float = 0.99, **kwargs: Any) -> None:
        check_n_steps(n_steps)
        if kwargs.get("optimize_memory_usage"):
            raise ValueError(
                "PrioritizedReplayBuffer does not support optimize_memory_usage=True; use "
                "PrioritizedFrameStackReplayBuffer to store image frames once."
            )
        super().__init__(*args, **kwargs)
        self.n_steps = n_steps
        self.gamma = gamma

    def _transitions(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> ReplayBufferSamples:
        obs = self._normalize_obs(self.observations[batch_inds, env_indices], env)
        actions = self.actions[batch_inds, env_indices]
        if self.n_steps == 1:
            timeouts = self.timeouts[batch_inds, env_indices]
            one_step = (
                obs,
                actions,
                self._normalize_obs(self.next_observations[batch_inds, env_indices], env),
                (self.dones[batch_inds, env_indices] * (1 - timeouts)).reshape(-1, 1),
                self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
            )
            return ReplayBufferSamples(*(self.to_torch(array) for array in one_step))  # type: ignore[arg-type]
        returns = n_step_returns(self, batch_inds, env_indices, self.n_steps, self.gamma, env)
        next_obs = self.next_observations[returns.last_rows, env_indices]
        n_step = (
            obs,
            actions,
            self._normalize_obs(next_obs, env),
            returns.dones,
            returns.rewards,
            returns.discounts,
        )
        return ReplayBufferSamples(*(self.to_torch(array) for array in n_step))  # type: ignore[arg-type]


class PrioritizedFrameStackReplayBuffer(PrioritizedReplay, FrameStackReplayBuffer):  # type: ignore[misc] # sample: see PrioritizedReplay
    """Prioritized replay on the frame-once memory (:class:`FrameStackReplayBuffer`).

    Takes ``FrameStackReplayBuffer``'s arguments (``n_steps``, ``gamma``, ``frame_headroom``...)
    and :class:`PrioritizedReplay`'s. Rows whose frames were overwritten are never returned
    (see :meth:`PrioritizedReplay.sample`).
    """

    @property
    def nbytes(self) -> int:
        """Bytes held by the memory's arrays and the sum tree of the priorities."""
        return super().nbytes + self.tree.nbytes

    def _invalid(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray | None:
        return ~self.is_valid(rows, envs)
