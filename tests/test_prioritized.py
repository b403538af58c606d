# The buffers sample from numpy's global legacy generator, as SB3's; tests seed it on purpose.
# ruff: noqa: NPY002
"""custom.prioritized and custom.replay: prioritized sampling on both memories, with n-step.

Oracles: the proportional distribution p^alpha / sum (binomial bounds per transition), the
importance-weight formula, SB3's own ReplayBuffer / NStepReplayBuffer for the transitions, and
pickle for save/load.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer

from custom.buffers import FrameStackReplayBuffer
from custom.prioritized import (
    PrioritizedFrameStackReplayBuffer,
    PrioritizedReplay,
    PrioritizedReplayBuffer,
    PrioritizedReplayBufferSamples,
)
from custom.replay import replay_buffer_setup
from tests.test_buffers import SHAPE, FrameIdStream, assert_same_samples, feed

OBS = spaces.Box(0, 255, SHAPE, dtype=np.uint8)
KINDS = {"standard": PrioritizedReplayBuffer, "frames": PrioritizedFrameStackReplayBuffer}


def make(kind: str, capacity: int, n_envs: int, **kwargs: Any) -> PrioritizedReplay:
    kwargs = {"beta_anneal_steps": 1000, **kwargs}
    return KINDS[kind](capacity, OBS, spaces.Discrete(3), "cpu", n_envs, **kwargs)


def filled(
    kind: str, capacity: int = 60, n_envs: int = 2, steps: int = 45, **kwargs: Any
) -> PrioritizedReplay:
    """A buffer fed ``steps`` steps of 1-to-6-step episodes (terminals and timeouts)."""
    if kind == "frames":
        kwargs = {"frame_headroom": 2.0, **kwargs}
    buffer = make(kind, capacity, n_envs, **kwargs)
    feed(FrameIdStream(n_envs, "first", max_len=6), (buffer,), steps)
    return buffer


def stored_leaves(buffer: PrioritizedReplay) -> np.ndarray:
    return np.arange(buffer.size() * buffer.n_envs)


def sample_counts(buffer: PrioritizedReplay, batches: int, batch_size: int = 32) -> np.ndarray:
    counts = np.zeros(buffer.buffer_size * buffer.n_envs, dtype=np.int64)
    for _ in range(batches):
        np.add.at(counts, buffer.sample(batch_size).indices, 1)
    return counts


def assert_proportional(counts: np.ndarray, probabilities: np.ndarray) -> None:
    """Every count within 5 binomial standard deviations (stratification only narrows it)."""
    n = counts.sum()
    sd = np.sqrt(n * probabilities * (1 - probabilities))
    assert np.all(np.abs(counts - n * probabilities) <= 5 * sd + 1e-9)
    assert counts[probabilities == 0].sum() == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("alpha", [0.6, 1.0])
def test_sampling_frequencies_follow_p_alpha(kind: str, alpha: float) -> None:
    buffer = filled(kind, alpha=alpha)
    leaves = stored_leaves(buffer)
    priorities = np.random.default_rng(0).uniform(0.05, 3.0, size=len(leaves))
    buffer.update_priorities(leaves, priorities)
    np.random.seed(0)
    counts = sample_counts(buffer, 600)
    expected = np.zeros(len(counts))
    expected[leaves] = priorities**alpha / (priorities**alpha).sum()
    assert_proportional(counts, expected)
    # and the frequencies do differ from uniform
    assert np.corrcoef(counts[leaves], priorities)[0, 1] > 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_alpha_zero_samples_uniformly_with_unit_weights(kind: str) -> None:
    buffer = filled(kind, alpha=0.0)
    leaves = stored_leaves(buffer)
    buffer.update_priorities(leaves, np.random.default_rng(1).uniform(0.01, 100, len(leaves)))
    np.random.seed(1)
    counts = sample_counts(buffer, 400)
    expected = np.zeros(len(counts))
    expected[leaves] = 1 / len(leaves)
    assert_proportional(counts, expected)
    assert th.equal(buffer.sample(32).weights, th.ones(32, 1))


def test_importance_weights_equal_the_formula() -> None:
    buffer = filled("standard", alpha=0.7, beta=0.4, beta_anneal_steps=1000)
    leaves = stored_leaves(buffer)
    priorities = np.random.default_rng(2).uniform(0.1, 5.0, size=len(leaves))
    buffer.update_priorities(leaves, priorities)
    for step, beta in ((0, 0.4), (500, 0.7), (1000, 1.0), (5000, 1.0)):
        buffer.num_timesteps = step
        assert buffer.beta == pytest.approx(beta)
        batch = buffer.sample(32)
        p = priorities[batch.indices] ** 0.7 / (priorities**0.7).sum()
        w = (len(leaves) * p) ** -beta
        expected = (w / w.max()).reshape(-1, 1)
        assert batch.weights.dtype == th.float32 and batch.weights.shape == (32, 1)
        np.testing.assert_allclose(batch.weights.numpy(), expected, rtol=1e-6)


def test_priority_update_changes_exactly_the_targeted_leaves_and_the_total() -> None:
    buffer = filled("frames", alpha=0.5)
    before = buffer.tree.leaves.copy()
    batch = buffer.sample(8)
    targeted = np.unique(batch.indices)
    buffer.update_priorities(targeted, np.full(len(targeted), 4.0))
    after = buffer.tree.leaves
    changed = np.flatnonzero(after != before)
    np.testing.assert_array_equal(changed, targeted)
    assert np.all(after[targeted] == 2.0)  # 4 ** 0.5
    assert buffer.tree.total == pytest.approx(before.sum() + (2.0 - before[targeted]).sum())
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="positive and finite"):
            buffer.update_priorities(targeted[:1], np.array([bad]))


@pytest.mark.parametrize("kind", KINDS)
def test_new_transitions_get_the_largest_priority_seen(kind: str) -> None:
    buffer = filled(kind, alpha=0.5, steps=10)
    assert np.all(buffer.tree.leaves[stored_leaves(buffer)] == 1.0)  # nothing seen yet: 1
    buffer.update_priorities(np.array([0, 3]), np.array([9.0, 0.25]))
    buffer.update_priorities(np.array([0]), np.array([0.5]))  # the max seen stays 9
    row = buffer.pos
    feed(FrameIdStream(2, "repeat"), (buffer,), 1)
    assert np.all(buffer.tree.leaves[[2 * row, 2 * row + 1]] == 3.0)
    assert buffer.priority_spread() == pytest.approx(3.0 * 22 / buffer.tree.total)


def sb3_windows(ref: ReplayBuffer, rows: np.ndarray, seed: int) -> tuple[np.ndarray, Any]:
    """SB3's transitions at ``rows``, and the env indices its ``_get_samples`` drew."""
    np.random.seed(seed)
    envs = np.random.randint(0, ref.n_envs, size=rows.shape)
    np.random.seed(seed)
    return envs, ref._get_samples(rows)


@pytest.mark.parametrize("n_steps", [1, 3])
def test_sampled_transitions_equal_sb3_on_both_memories(n_steps: int) -> None:
    """PER with n-step: what a drawn leaf yields is SB3's transition, on either memory."""
    capacity, n_envs = 40, 2
    args = (capacity, OBS, spaces.Discrete(3), "cpu", n_envs)
    ref = (
        NStepReplayBuffer(*args, n_steps=n_steps, gamma=0.9) if n_steps > 1 else ReplayBuffer(*args)
    )
    standard = make("standard", capacity, n_envs, n_steps=n_steps, gamma=0.9)
    frames = make("frames", capacity, n_envs, n_steps=n_steps, gamma=0.9, frame_headroom=2.0)
    stream = FrameIdStream(n_envs, "first", max_len=5)
    for chunk in (7, 30, 19):  # not full, full, wrapped
        feed(stream, (ref, standard, frames), chunk)
        rows = np.repeat(np.arange(ref.size()), 4)
        envs, expected = sb3_windows(ref, rows, seed=chunk)
        for buffer in (standard, frames):
            assert_same_samples(buffer._transitions(rows, envs, None), expected)
        # Same priorities, same seed: both memories draw the same leaves and transitions.
        leaves = stored_leaves(standard)
        priorities = np.random.default_rng(chunk).uniform(0.1, 2.0, len(leaves))
        for buffer in (standard, frames):
            buffer.update_priorities(leaves, priorities)
        np.random.seed(chunk)
        a = standard.sample(32)
        np.random.seed(chunk)
        b = frames.sample(32)
        assert isinstance(a, PrioritizedReplayBufferSamples)
        assert_same_samples(a, b)
        np.testing.assert_array_equal(a.indices, b.indices)
        assert th.equal(a.weights, b.weights)
        assert (a.discounts is None) == (n_steps == 1)


def test_frames_never_yields_a_row_whose_frames_were_overwritten() -> None:
    buffer = make("frames", 400 * 2, 2, frame_headroom=0.0, n_steps=3, gamma=0.9)
    feed(FrameIdStream(2, "fresh", max_len=3), (buffer,), 700)
    rows, envs = np.divmod(stored_leaves(buffer), 2)
    valid = buffer.is_valid(rows, envs)
    assert 0 < valid.sum() < len(valid)
    invalid_leaves = stored_leaves(buffer)[~valid]
    # Make the invalid rows the likeliest ones: each is drawn at most once, then zeroed.
    buffer.update_priorities(invalid_leaves, np.full(len(invalid_leaves), 1e6))
    np.random.seed(0)
    for _ in range(20):
        batch = buffer.sample(64)
        r, e = np.divmod(batch.indices, 2)
        assert buffer.is_valid(r, e).all()
    assert np.all(buffer.tree.leaves[invalid_leaves] == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_keeps_priorities_and_sampling(kind: str) -> None:
    buffer = filled(kind, n_steps=3, gamma=0.9)
    buffer.update_priorities(stored_leaves(buffer), np.linspace(0.1, 3, buffer.size() * 2))
    buffer.num_timesteps = 400
    loaded = pickle.loads(pickle.dumps(buffer))
    assert loaded.beta == buffer.beta and loaded.max_priority == buffer.max_priority
    np.testing.assert_array_equal(loaded.tree.leaves, buffer.tree.leaves)
    for seed in range(3):
        np.random.seed(seed)
        expected = buffer.sample(32)
        np.random.seed(seed)
        got = loaded.sample(32)
        assert_same_samples(got, expected)
        np.testing.assert_array_equal(got.indices, expected.indices)
        assert th.equal(got.weights, expected.weights)


def test_reset_forgets_priorities() -> None:
    buffer = filled("frames")
    buffer.update_priorities(np.array([0]), np.array([50.0]))
    buffer.reset()
    assert buffer.size() == 0 and buffer.tree.total == 0 and buffer.max_priority == 1.0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("alpha", -0.1, "alpha must be >= 0"),
        ("beta", 1.5, "beta must be in \\[0, 1\\]"),
        ("beta", -0.1, "beta must be in \\[0, 1\\]"),
        ("beta_final", 2.0, "beta_final must be in \\[0, 1\\]"),
        ("eps", 0.0, "eps must be > 0"),
        ("eps", float("nan"), "eps must be > 0"),
        ("beta_anneal_steps", -1, "beta_anneal_steps must be an env step count"),
        ("gamma_typo", 1.0, "unknown option gamma_typo"),
    ],
)
def test_bad_values_raise_one_line(option: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replay_buffer_setup("frames", n_steps=1, gamma=0.99, prioritized=True, **{option: value})
    if option != "gamma_typo":
        with pytest.raises(ValueError, match=message):
            make("standard", 10, 1, **{option: value})


def test_setup_picks_the_class_and_kwargs() -> None:
    assert replay_buffer_setup("standard", n_steps=3, gamma=0.9, alpha=0.5) == (None, {})
    assert replay_buffer_setup("frames", n_steps=3, gamma=0.9, frame_headroom=0.1, eps=1e-3) == (
        FrameStackReplayBuffer,
        {"frame_headroom": 0.1, "n_steps": 3, "gamma": 0.9},
    )
    options = {"alpha": 0.5, "beta": 0.4, "beta_anneal_steps": 10, "eps": 1e-3}
    cls, kwargs = replay_buffer_setup(
        "standard", n_steps=1, gamma=0.9, prioritized=True, frame_headroom=0.1, **options
    )
    assert cls is PrioritizedReplayBuffer
    assert kwargs == {**options, "n_steps": 1, "gamma": 0.9}
    cls, kwargs = replay_buffer_setup("frames", n_steps=2, gamma=0.9, prioritized=True)
    assert cls is PrioritizedFrameStackReplayBuffer and kwargs == {"n_steps": 2, "gamma": 0.9}
    with pytest.raises(ValueError, match="replay kind must be one of standard, frames"):
        replay_buffer_setup("dopamine", n_steps=1, gamma=0.9)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1, got 0"):
        replay_buffer_setup("standard", n_steps=0, gamma=0.9)
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        make("standard", 10, 1, optimize_memory_usage=True, handle_timeout_termination=False)


def test_memory_per_transition_of_a_1m_breakout_buffer_with_priorities() -> None:
    # np.zeros does not touch the memory, so this costs nothing; the benchmark measures RSS.
    buffer = PrioritizedFrameStackReplayBuffer(
        1_000_000, spaces.Box(0, 255, (4, 84, 84), np.uint8), spaces.Discrete(4), "cpu"
    )
    assert buffer.tree.nbytes > 8 * 1_000_000
    assert buffer.nbytes / 1_000_000 <= 7250  # the bound, tree included; SB3: 56,468
