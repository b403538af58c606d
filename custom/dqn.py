"""DQN variants that differ only in the bootstrap value of the TD target.

:class:`TargetDQN` is SB3's DQN with ``train()`` rewritten once around one hook,
:meth:`TargetDQN.next_state_values`; each variant below is that hook (plus, for softmax, how
it acts). With the default hook the update is numerically identical to SB3's DQN
(``tests/test_dqn.py`` guards it). The maths lives in :mod:`custom.targets`, the losses in
:mod:`custom.losses`.
"""

from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.common.utils import ConstantSchedule

from custom.losses import loss_function
from custom.policies import POLICY_ALIASES
from custom.targets import (
    double_q_values,
    expected_sarsa_values,
    max_values,
    softmax_probs,
    softmax_values,
)

SB3_DQN_TRAIN_VERSION = "2.9.2"
"""The stable-baselines3 release whose ``DQN.train`` :meth:`TargetDQN.train` copies."""
SB3_DQN_TRAIN_SHA256 = "696507cb4053336a892a34781e07fc6884c8d43673ea5cc7cb463f64e086c17e"
"""sha256 of that method's source, ``inspect.getsource(stable_baselines3.DQN.train)``, UTF-8.

``tests/test_dqn.py`` compares it with the installed SB3's: a new SB3 whose ``DQN.train``
changed must be ported into :meth:`TargetDQN.train` before these two constants move.
"""


class TargetDQN(DQN):
    """SB3's DQN whose TD target asks :meth:`next_state_values` for ``V(s')``.

    Takes DQN's constructor arguments plus ``loss``. Its policy names resolve to
    :mod:`custom.policies`, which add ``policy_kwargs=dict(dueling=True)`` and
    ``policy_kwargs=dict(network="reference")``.
    Besides SB3's keys it logs ``train/q_mean`` (mean Q of the actions taken) and
    ``train/target_mean`` (mean TD target), the first things to look at when values diverge.

    :param args: positional arguments of DQN (``policy``, ``env``, ...)
    :param loss: TD loss on the taken action, a name in :data:`custom.losses.LOSSES`:
        ``"smooth_l1"`` (SB3's, the default) or ``"reference"`` (the reference agent's,
        :func:`custom.losses.reference_huber`). Saved with the model.
    :param kwargs: keyword arguments of DQN
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = POLICY_ALIASES

    def __init__(self, *args: Any, loss: str = "smooth_l1", **kwargs: Any) -> None:
        loss_function(loss)  # fail on a bad name before SB3 builds env, buffer and networks
        # A plain attribute: SB3's save() stores it and load() restores it before training.
        self.loss = loss
        super().__init__(*args, **kwargs)

    def next_state_values(self, next_obs: PyTorchObs) -> th.Tensor:
        """Bootstrap value ``V(s')`` of a batch of next observations; called under no_grad.

        Default: Q-learning, ``max_a Q_target(s', a)``.

        :param next_obs: next observations, batched
        :return: values, (batch,)
        """
        return max_values(self.q_net_target(next_obs))

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # SB3 2.9.2's DQN.train (SB3_DQN_TRAIN_SHA256), line for line, except for the hook,
        # the loss function and the two extra logs.
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        loss_fn = loss_function(self.loss)

        losses = []
        q_taken, targets = [], []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                next_q_values = self.next_state_values(replay_data.next_observations)
                # Avoid potential broadcast issue
                next_q_values = next_q_values.reshape(-1, 1)
                target_q_values = (
                    replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values
                )

            current_q_values = self.q_net(replay_data.observations)
            current_q_values = th.gather(current_q_values, dim=1, index=replay_data.actions.long())

            loss = loss_fn(current_q_values, target_q_values)
            losses.append(loss.item())
            q_taken.append(current_q_values.detach())
            targets.append(target_q_values)

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        # Both means in one op and one sync per call: per-step means would cost a few percent
        # of a small network's update.
        stats = th.cat(q_taken + targets, dim=1).reshape(-1, 2, gradient_steps)
        q_mean, target_mean = stats.mean(dim=(0, 2)).tolist()
        self.logger.record("train/q_mean", q_mean)
        self.logger.record("train/target_mean", target_mean)


class DoubleDQN(TargetDQN):
    """Double DQN: the online network selects ``a'``, the target network evaluates it.

    ``V(s') = Q_target(s', argmax_a Q_online(s', a))``. Costs one more forward pass (online
    network on the next observations) per gradient step. Same arguments as DQN.
    """

    def next_state_values(self, next_obs: PyTorchObs) -> th.Tensor:
        return double_q_values(self.q_net_target(next_obs), self.q_net(next_obs))


class ExpectedSarsaDQN(TargetDQN):
    """Expected SARSA for the epsilon-greedy policy that the agent follows.

    ``V(s') = sum_a pi_eps(a|s') Q_target(s', a)`` with eps the *current* exploration rate
    (as the reference agent does), so the target follows epsilon's schedule: the mean of Q
    while exploring fully, Q-learning's max once eps = 0. Same arguments as DQN.
    """

    def next_state_values(self, next_obs: PyTorchObs) -> th.Tensor:
        return expected_sarsa_values(self.q_net_target(next_obs), self.exploration_rate)


class SoftmaxDQN(TargetDQN):
    """Expected SARSA for a softmax (Boltzmann) policy, which is also the behaviour policy.

    ``V(s') = sum_a softmax(Q_target(s', .) / tau)_a Q_target(s', a)``; while training, actions
    are sampled from ``softmax(Q_online(s, .) / tau)`` (greedy with ``deterministic=True``).
    Softmax replaces epsilon-greedy: the exploration rate stays 0 and the ``exploration_*``
    arguments are accepted (so that one config serves every DQN variant) but unused.
    Logs ``train/temperature``.

    :param temperature: tau > 0 (the reference agent uses 5e-5)
    :param args: positional arguments of DQN (``policy``, ``env``, ...)
    :param kwargs: keyword arguments of DQN
    """

    def __init__(self, *args: Any, temperature: float = 1.0, **kwargs: Any) -> None:
        if not temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.exploration_schedule = ConstantSchedule(0.0)

    def _on_step(self) -> None:
        super()._on_step()
        self.logger.record("train/temperature", self.temperature)

    def next_state_values(self, next_obs: PyTorchObs) -> th.Tensor:
        return softmax_values(self.q_net_target(next_obs), self.temperature)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Sample actions from ``softmax(Q_online / tau)``; greedy when deterministic.

        :param observation: one observation or a batch (as SB3's ``predict``)
        :param state: unused (no recurrent state), returned as is
        :param episode_start: unused
        :param deterministic: take the greedy action instead of sampling
        :return: the actions and ``state``
        """
        if deterministic:
            return self.policy.predict(observation, state, episode_start, deterministic=True)
        self.policy.set_training_mode(False)
        obs_tensor, vectorized_env = self.policy.obs_to_tensor(observation)
        with th.no_grad():
            probs = softmax_probs(self.q_net(obs_tensor), self.temperature)
            actions = th.multinomial(probs, num_samples=1).reshape(-1).cpu().numpy()
        if not vectorized_env:
            actions = actions.squeeze(axis=0)
        return actions, state
