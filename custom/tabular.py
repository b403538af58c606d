"""Exact solutions of small tabular MDPs, as reference lines for what an agent could reach.

The MDP comes in gymnasium's toy-text format (``env.unwrapped.P``, as FrozenLake has it):
``P[state][action]`` is a list of ``(probability, next_state, reward, terminated)``. A
terminated transition ends the episode, so nothing is bootstrapped from its next state.

With ``gamma=1`` and FrozenLake's reward (1 on reaching the goal, 0 otherwise) the value of a
state is the probability of reaching the goal from it: the optimal success rate. FrozenLake's
evaluation games stop after ``max_episode_steps`` (100 on 4x4), which matters: on 4x4 slippery
the optimum is 0.824 without a step limit but 0.744 within 100 steps, the figure agents are
measured against. Pass ``horizon`` to get the latter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: gymnasium's toy-text transition model: P[state][action] -> [(prob, next, reward, terminated)].
TransitionModel = Mapping[int, Mapping[int, Sequence[tuple[float, int, float, bool]]]]


def transition_arrays(
    P: TransitionModel, n_states: int, n_actions: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expected rewards and continuation probabilities as arrays, for vectorised backups.

    :param P: the transition model, ``P[s][a] = [(prob, next_state, reward, terminated), ...]``.
    :param n_states: number of states.
    :param n_actions: number of actions.
    :return: ``rewards`` (n_states, n_actions), the expected immediate reward, and
        ``continue_probs`` (n_states, n_actions, n_states), the probability of moving to each
        next state *without* the episode ending (terminated transitions are left out, so their
        next state's value never counts).
    """
    rewards = np.zeros((n_states, n_actions))
    continue_probs = np.zeros((n_states, n_actions, n_states))
    for state in range(n_states):
        for action in range(n_actions):
            for prob, next_state, reward, terminated in P[state][action]:
                rewards[state, action] += prob * reward
                if not terminated:
                    continue_probs[state, action, next_state] += prob
    return rewards, continue_probs


def value_iteration(
    P: TransitionModel,
    n_states: int,
    n_actions: int,
    gamma: float = 1.0,
    horizon: int | None = None,
    tol: float = 1e-12,
    max_iterations: int = 1_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal state values and a greedy policy, by value iteration from zero values.

    Without ``horizon``: the fixed point of the Bellman optimality backup, iterated until no
    value moves by more than ``tol``. ``gamma=1`` is allowed where every policy's return is
    bounded (reaching-a-goal problems such as FrozenLake): iterating from zero then converges
    upwards to the optimal probability of reaching the reward.
    With ``horizon``: exactly ``horizon`` backups, the optimal value of an episode cut after
    ``horizon`` steps (a time limit), and the best first action with that many steps to go.

    :param P: the transition model, ``P[s][a] = [(prob, next_state, reward, terminated), ...]``.
    :param n_states: number of states.
    :param n_actions: number of actions.
    :param gamma: discount factor in (0, 1].
    :param horizon: steps before the episode is cut; None for no limit.
    :param tol: convergence threshold on the largest value change (no ``horizon`` only).
    :param max_iterations: give up after this many backups (no ``horizon`` only).
    :return: ``values`` (n_states,) and ``policy`` (n_states,) of greedy action indices (the
        first of tied actions).
    :raises ValueError: for ``gamma`` outside (0, 1], a negative ``horizon``, or no
        convergence within ``max_iterations``.
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if horizon is not None and horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    rewards, continue_probs = transition_arrays(P, n_states, n_actions)
    values = np.zeros(n_states)
    q_values = np.zeros((n_states, n_actions))
    for _ in range(horizon if horizon is not None else max_iterations):
        q_values = rewards + gamma * continue_probs @ values
        new_values = q_values.max(axis=1)
        converged = float(np.abs(new_values - values).max()) < tol
        values = new_values
        if horizon is None and converged:
            return values, q_values.argmax(axis=1)
    if horizon is None:
        raise ValueError(
            f"value iteration did not converge in {max_iterations} iterations; "
            "with gamma=1 some policy's return may be unbounded"
        )
    return values, q_values.argmax(axis=1)
