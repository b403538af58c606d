"""Replay options -> the replay buffer class and kwargs that an SB3 DQN is built with.

One place that knows which class serves which combination of memory kind, prioritization and
n-step returns, and that refuses a bad value in one line before anything is built.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.buffers import ReplayBuffer

from custom.buffers import FrameStackReplayBuffer, check_n_steps
from custom.prioritized import (
    PrioritizedFrameStackReplayBuffer,
    PrioritizedReplayBuffer,
    check_prioritized,
)

#: kind -> (class without prioritization, class with it); None: SB3 picks ReplayBuffer, or
#: NStepReplayBuffer when the model's n_steps > 1.
REPLAY_KINDS: dict[str, tuple[type[ReplayBuffer] | None, type[ReplayBuffer]]] = {
    "standard": (None, PrioritizedReplayBuffer),
    "frames": (FrameStackReplayBuffer, PrioritizedFrameStackReplayBuffer),
}


def replay_buffer_setup(
    kind: str,
    *,
    n_steps: int,
    gamma: float,
    prioritized: bool = False,
    **options: Any,
) -> tuple[type[ReplayBuffer] | None, dict[str, Any]]:
    """The ``replay_buffer_class`` and ``replay_buffer_kwargs`` of a DQN (``custom.dqn``'s).

    Build the model with ``n_steps=n_steps, gamma=gamma, replay_buffer_class=cls,
    replay_buffer_kwargs=kwargs``: the buffer gets ``n_steps`` and ``gamma`` in its kwargs
    (SB3 passes neither to a custom class), and ``TargetDQN`` refuses a buffer whose returns
    differ from its own. Options left out take the classes' defaults; options that the chosen
    class does not take (prioritization's, when ``prioritized`` is False) are checked, then
    left out.

    :param kind: ``"standard"`` (SB3's memory) or ``"frames"`` (:class:`FrameStackReplayBuffer`)
    :param n_steps: the model's ``n_steps``, >= 1
    :param gamma: the model's ``gamma``
    :param prioritized: proportional prioritized replay (:mod:`custom.prioritized`)
    :param options: ``alpha``, ``beta``, ``beta_final``, ``beta_anneal_steps``, ``eps``
        (:class:`custom.prioritized.PrioritizedReplay`), ``frame_headroom`` (``"frames"`` only)
    :return: the class (None: SB3 builds its own) and its kwargs
    :raises ValueError: on an unknown kind or option, or a value outside its range
    """
    if kind not in REPLAY_KINDS:
        raise ValueError(f"replay kind must be one of {', '.join(REPLAY_KINDS)}; got {kind!r}")
    check_n_steps(n_steps)
    priority = {name: value for name, value in options.items() if name != "frame_headroom"}
    check_prioritized(**priority)
    uniform_class, prioritized_class = REPLAY_KINDS[kind]
    kwargs: dict[str, Any] = {}
    if "frame_headroom" in options and kind == "frames":
        kwargs["frame_headroom"] = options["frame_headroom"]
    if prioritized:
        return prioritized_class, {**kwargs, **priority, "n_steps": n_steps, "gamma": gamma}
    if uniform_class is None:
        return None, {}
    return uniform_class, {**kwargs, "n_steps": n_steps, "gamma": gamma}
