"""custom/tabular.py: value iteration against hand-solved MDPs and FrozenLake's known optimum."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from custom.tabular import TransitionModel, transition_arrays, value_iteration

LEFT, DOWN, RIGHT, UP = range(4)


def coin_mdp() -> TransitionModel:
    """State 0: action 0 waits (reward 0); action 1 flips a coin: heads ends the episode with
    reward 1 in state 1, tails stays in 0. State 1 pays 1 per step forever, so a backup that
    wrongly bootstraps through the terminating transition would add gamma * V(1) to V(0)."""
    return {
        0: {0: [(1.0, 0, 0.0, False)], 1: [(0.5, 1, 1.0, True), (0.5, 0, 0.0, False)]},
        1: {0: [(1.0, 1, 1.0, False)], 1: [(1.0, 1, 1.0, False)]},
    }


def frozenlake_4x4() -> tuple[TransitionModel, int, int, int]:
    """FrozenLake 4x4 slippery's own transition model, sizes and time limit."""
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True)
    unwrapped = env.unwrapped
    assert env.spec is not None and env.spec.max_episode_steps is not None
    return (
        unwrapped.P,  # type: ignore[attr-defined]
        int(unwrapped.observation_space.n),  # type: ignore[attr-defined]
        int(unwrapped.action_space.n),  # type: ignore[attr-defined]
        env.spec.max_episode_steps,
    )


def test_transition_arrays_leave_out_terminated_transitions() -> None:
    rewards, continue_probs = transition_arrays(coin_mdp(), 2, 2)
    np.testing.assert_allclose(rewards, [[0.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(continue_probs[0, 1], [0.5, 0.0])  # heads ends: not continued
    np.testing.assert_allclose(continue_probs[1, 0], [0.0, 1.0])


def test_discounted_values_solve_the_bellman_equation_by_hand() -> None:
    # Flipping: V0 = 0.5 * 1 + 0.5 * 0.9 * V0  ->  V0 = 0.5 / 0.55. Waiting gives 0.9 * V0 < V0.
    # State 1: V1 = 1 + 0.9 * V1 -> 10.
    values, policy = value_iteration(coin_mdp(), 2, 2, gamma=0.9)
    np.testing.assert_allclose(values, [0.5 / 0.55, 10.0], rtol=1e-9)
    assert policy[0] == 1


def test_horizon_gives_the_finite_step_optimum() -> None:
    # Reaching the reward within H coin flips: 1 - 0.5 ** H (undiscounted, state 0 only:
    # state 1's endless reward makes it H there).
    for horizon in (0, 1, 2, 7):
        values, _ = value_iteration(coin_mdp(), 2, 2, gamma=1.0, horizon=horizon)
        np.testing.assert_allclose(values, [1 - 0.5**horizon, horizon], rtol=1e-12)


def test_unbounded_undiscounted_problem_is_an_error() -> None:
    # State 1 pays 1 forever: with gamma = 1 and no horizon there is no fixed point.
    with pytest.raises(ValueError, match="did not converge"):
        value_iteration(coin_mdp(), 2, 2, gamma=1.0, max_iterations=500)


@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.5])
def test_gamma_outside_0_1_is_refused(gamma: float) -> None:
    with pytest.raises(ValueError, match="gamma"):
        value_iteration(coin_mdp(), 2, 2, gamma=gamma)


def test_frozenlake_4x4_optimum_within_its_time_limit_is_about_0_74() -> None:
    # The published optimum of 4x4 slippery, about 0.74 success, holds for its 100-step limit.
    P, n_states, n_actions, limit = frozenlake_4x4()
    values, _ = value_iteration(P, n_states, n_actions, gamma=1.0, horizon=limit)
    assert limit == 100
    assert values[0] == pytest.approx(0.7442, abs=5e-4)


def test_frozenlake_4x4_optimum_without_time_limit_and_its_policy() -> None:
    # Without a step limit the goal is reached with probability 14/17 = 0.8235 (gamma -> 1),
    # by the textbook policy: LEFT at the start (hugging the wall), DOWN at 9 and 14, RIGHT at 13.
    P, n_states, n_actions, _ = frozenlake_4x4()
    values, policy = value_iteration(P, n_states, n_actions, gamma=1.0)
    assert values[0] == pytest.approx(14 / 17, abs=1e-9)
    assert values[15] == 0.0  # the goal is terminal: nothing more to collect there
    assert (policy[0], policy[9], policy[13], policy[14]) == (LEFT, DOWN, RIGHT, DOWN)
