"""DQN variants that differ only in the bootstrap value of the TD target.

:class:`TargetDQN` is SB3's DQN with ``train()`` rewritten once around one hook,
:meth:`TargetDQN.next_state_values`; each variant below is that hook (plus, for softmax, how
it acts). With the default hook the update is numerically identical to SB3's DQN
(``tests/test_dqn.py`` guards it). The maths lives in :mod:`custom.targets`, the losses in
:mod:`custom.losses`.
"""

import logging
import math
import time
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, ReplayBufferSamples
from stable_baselines3.common.utils import ConstantSchedule

from custom.buffers import check_n_steps
from custom.losses import loss_function
from custom.policies import POLICY_ALIASES
from custom.prioritized import PrioritizedReplay, PrioritizedReplayBufferSamples
from custom.targets import (
    double_q_values,
    expected_sarsa_values,
    max_values,
    softmax_probs,
    softmax_values,
)

log = logging.getLogger(__name__)

SB3_DQN_TRAIN_VERSION = "2.9.2"
"""The stable-baselines3 release whose ``DQN.train`` :meth:`TargetDQN.train` copies."""
SB3_DQN_TRAIN_SHA256 = "696507cb4053336a892a34781e07fc6884c8d43673ea5cc7cb463f64e086c17e"
"""sha256 of that method's source, ``inspect.getsource(stable_baselines3.DQN.train)``, UTF-8.

``tests/test_dqn.py`` compares it with the installed SB3's: a new SB3 whose ``DQN.train``
changed must be ported into :meth:`TargetDQN.train` before these two constants move.
"""


class TargetDQN(DQN):
    """SB3's DQN whose TD target asks :meth:`next_state_values` for ``V(s')``.

    Takes DQN's constructor arguments plus ``loss`` and ``compile_update``. Its policy names
    resolve to :mod:`custom.policies`, which add ``policy_kwargs=dict(dueling=True)`` and
    ``policy_kwargs=dict(network="reference")``.
    Besides SB3's keys it logs ``train/q_mean`` (mean Q of the actions taken) and
    ``train/target_mean`` (mean TD target), the first things to look at when values diverge.

    With a prioritized replay buffer (:mod:`custom.prioritized`) each sample's loss is weighted
    by its importance weight, the sampled priorities are set to ``|TD error| + eps`` after each
    gradient step, and it logs ``train/per_beta``, ``train/per_weight_mean`` and
    ``train/per_priority_spread`` (:meth:`~custom.prioritized.PrioritizedReplay.priority_spread`:
    it grows when priorities explode). Without one the update is SB3's.

    :param args: positional arguments of DQN (``policy``, ``env``, ...)
    :param loss: TD loss on the taken action, a name in :data:`custom.losses.LOSSES`:
        ``"smooth_l1"`` (SB3's, the default) or ``"reference"`` (the reference agent's,
        :func:`custom.losses.reference_huber`). Saved with the model.
    :param compile_update: run the update's forward and backward passes through
        ``torch.compile``: the eager update to float rounding; its speed is measured by
        ``python -m benchmarks.compiled_update``. Compilation happens in
        the first gradient step (``compile_seconds``); where it fails the update runs eagerly,
        with a warning. Saved with the model.
    :param kwargs: keyword arguments of DQN. ``n_steps`` (>= 1) must agree with the replay
        buffer's: SB3 builds its ``NStepReplayBuffer`` itself only without a
        ``replay_buffer_class``; a custom class (``FrameStackReplayBuffer``, the prioritized
        buffers) gets ``n_steps`` and ``gamma`` through ``replay_buffer_kwargs``, and a model
        whose buffer computes other returns is refused instead of training 1-step returns.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = POLICY_ALIASES

    def __init__(
        self, *args: Any, loss: str = "smooth_l1", compile_update: bool = False, **kwargs: Any
    ) -> None:
        loss_function(loss)  # fail on a bad name before SB3 builds env, buffer and networks
        check_n_steps(kwargs.get("n_steps", 1))
        # Plain attributes: SB3's save() stores them and load() restores them before training.
        self.loss = loss
        self.compile_update = compile_update
        #: Seconds the first compiled gradient step took (compilation included); None until
        #: then, or when the update runs eagerly.
        self.compile_seconds: float | None = None
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        with warnings.catch_warnings():
            # SB3 warns that n_steps "is ignored" whenever a custom buffer class is given, also
            # when its kwargs carry n_steps; _check_replay_returns refuses the real mismatch.
            warnings.filterwarnings(
                "ignore", message=r"`n_steps=\d+` is ignored", category=UserWarning
            )
            super()._setup_model()
        self._check_replay_returns()
        self._use_networks(compiled=self.compile_update)

    def _check_replay_returns(self) -> None:
        """Refuse a replay buffer whose returns are not the model's ``n_steps`` and ``gamma``."""
        buffer = self.replay_buffer
        buffer_n_steps = getattr(buffer, "n_steps", 1)
        buffer_gamma = getattr(buffer, "gamma", self.gamma)
        if buffer_n_steps != self.n_steps or (self.n_steps > 1 and buffer_gamma != self.gamma):
            raise ValueError(
                f"n_steps={self.n_steps}, gamma={self.gamma} but the replay buffer "
                f"{type(buffer).__name__} computes {buffer_n_steps}-step returns with gamma "
                f"{buffer_gamma}: pass replay_buffer_kwargs=dict(n_steps={self.n_steps}, "
                f"gamma={self.gamma}) (custom.replay.replay_buffer_setup does)."
            )

    def _excluded_save_params(self) -> list[str]:
        # Compiled wrappers are rebuilt by _setup_model on load; the time is this process's.
        return [*super()._excluded_save_params(), "_online_q", "_target_q", "compile_seconds"]

    def _use_networks(self, compiled: bool) -> None:
        """Route the update's forward passes through ``torch.compile``d networks, or not.

        Only the update uses the compiled ones (fixed batch shapes, one graph each); acting
        and evaluation keep the eager ``q_net``. The wrappers share the modules' parameters,
        so saving, loading and the target copy see no difference.
        """
        self._online_q: Callable[[PyTorchObs], th.Tensor] = self.q_net
        self._target_q: Callable[[PyTorchObs], th.Tensor] = self.q_net_target
        if compiled:
            self._online_q = th.compile(self.q_net, dynamic=False)
            self._target_q = th.compile(self.q_net_target, dynamic=False)

    def online_q(self, obs: PyTorchObs) -> th.Tensor:
        """``Q_online(obs, .)`` as the update computes it (compiled when ``compile_update``)."""
        return self._online_q(obs)

    def target_q(self, obs: PyTorchObs) -> th.Tensor:
        """``Q_target(obs, .)`` as the update computes it (compiled when ``compile_update``)."""
        return self._target_q(obs)

    def next_state_values(self, next_obs: PyTorchObs) -> th.Tensor:
        """Bootstrap value ``V(s')`` of a batch of next observations; called under no_grad.

        Default: Q-learning, ``max_a Q_target(s', a)``. Overrides should evaluate the networks
        through :meth:`target_q` and :meth:`online_q`, which are compiled with the update.

        :param next_obs: next observations, batched
        :return: values, (batch,)
        """
        return max_values(self.target_q(next_obs))

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's epsilon-greedy ``DQN.predict``, with a lean greedy path for batched arrays.

        The same random draws in the same order (one ``np.random.rand()``, then one
        ``action_space.sample()`` per env when exploring) and the same greedy actions, so a
        seeded run acts as stock DQN does. A batch of array observations in the model's own
        layout (what ``learn()`` passes every step) skips ``BasePolicy.predict``'s checks and
        conversions and runs under ``torch.inference_mode``: acting on Breakout costs about a
        quarter less. Anything else (one unbatched observation, dicts, channel-last images)
        goes through SB3's own path.
        """
        shape = self.observation_space.shape
        if not (
            isinstance(observation, np.ndarray)
            and shape is not None
            and observation.ndim == len(shape) + 1
            and observation.shape[1:] == shape
        ):
            return super().predict(observation, state, episode_start, deterministic)
        if not deterministic and np.random.rand() < self.exploration_rate:  # noqa: NPY002 - as SB3
            return np.array([self.action_space.sample() for _ in range(len(observation))]), state
        if self.policy.training:
            self.policy.set_training_mode(False)
        with th.inference_mode():
            q_values = self.q_net(th.as_tensor(observation, device=self.device))
            return q_values.argmax(dim=1).cpu().numpy(), state

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # SB3 2.9.2's DQN.train (SB3_DQN_TRAIN_SHA256), step for step, except for the hook, the
        # loss function, the optional compilation, prioritized replay, and logging: losses and
        # means stay tensors and sync once per call instead of once per gradient step.
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        if isinstance(self.replay_buffer, PrioritizedReplay):
            # beta is a function of env steps: the model's count, which a resume restores
            self.replay_buffer.num_timesteps = self.num_timesteps

        losses, q_taken, targets, weights = [], [], [], []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            if self.compile_update and self.compile_seconds is None:
                loss, current_q_values, target_q_values = self._first_compiled_step(replay_data)
            else:
                loss, current_q_values, target_q_values = self._gradient_step(replay_data)
            losses.append(loss)
            q_taken.append(current_q_values)
            targets.append(target_q_values)
            if isinstance(replay_data, PrioritizedReplayBufferSamples):
                self._update_priorities(replay_data, current_q_values, target_q_values)
                weights.append(replay_data.weights)

        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        # The means with one sync per call: an .item() per step would cost a few percent of a
        # small network's update.
        means = [th.stack(losses).mean(), th.cat(q_taken).mean(), th.cat(targets).mean()]
        if weights:
            means.append(th.cat(weights).mean())
        loss_mean, q_mean, target_mean, *weight_mean = th.stack(means).tolist()
        self.logger.record("train/loss", loss_mean)
        self.logger.record("train/q_mean", q_mean)
        self.logger.record("train/target_mean", target_mean)
        if weights:
            self._log_prioritized(weight_mean[0])

    def _update_priorities(
        self,
        replay_data: PrioritizedReplayBufferSamples,
        current_q_values: th.Tensor,
        target_q_values: th.Tensor,
    ) -> None:
        """Set the sampled priorities to ``|TD error| + eps``: one device-to-host copy."""
        buffer = self.replay_buffer
        assert isinstance(buffer, PrioritizedReplay)
        td_errors = (target_q_values - current_q_values).abs().reshape(-1).cpu().numpy()
        buffer.update_priorities(replay_data.indices, td_errors.astype(np.float64) + buffer.eps)

    def _log_prioritized(self, weight_mean: float) -> None:
        buffer = self.replay_buffer
        assert isinstance(buffer, PrioritizedReplay)
        self.logger.record("train/per_beta", buffer.beta)
        self.logger.record("train/per_weight_mean", weight_mean)
        self.logger.record("train/per_priority_spread", buffer.priority_spread())

    def _gradient_step(
        self, replay_data: ReplayBufferSamples | PrioritizedReplayBufferSamples
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """One update on a sampled batch; returns the loss, ``Q(s, a)`` and the TD target."""
        # For n-step replay, discount factor is gamma**n_steps (when no early termination)
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

        with th.no_grad():
            next_q_values = self.next_state_values(replay_data.next_observations)
            # Avoid potential broadcast issue
            next_q_values = next_q_values.reshape(-1, 1)
            target_q_values = (
                replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values
            )

        current_q_values = self.online_q(replay_data.observations)
        current_q_values = th.gather(current_q_values, dim=1, index=replay_data.actions.long())

        # Importance weights of prioritized replay; None: the mean, as SB3 calls its loss.
        weights = (
            replay_data.weights if isinstance(replay_data, PrioritizedReplayBufferSamples) else None
        )
        loss = loss_function(self.loss)(current_q_values, target_q_values, weights)

        self.policy.optimizer.zero_grad()
        loss.backward()
        if math.isfinite(self.max_grad_norm):
            # An infinite norm clips nothing (SB3's factor would be 1.0 exactly); the norm
            # itself costs a fifth of a small network's update.
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        return loss.detach(), current_q_values.detach(), target_q_values

    def _first_compiled_step(
        self, replay_data: ReplayBufferSamples | PrioritizedReplayBufferSamples
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """The first compiled update, timed; where compilation fails, the update runs eagerly.

        Compilation happens here (forward) and in the backward pass, before the optimizer
        steps, so a failure leaves the parameters untouched and the eager retry is the same
        update.
        """
        start = time.perf_counter()
        try:
            result = self._gradient_step(replay_data)
        except Exception as error:  # any compiler failure: no C++ compiler, unsupported op...
            message = str(error).strip().splitlines()
            log.warning(
                "torch.compile failed (%s: %s); training with the eager update instead",
                type(error).__name__,
                message[0] if message else "",
            )
            self.compile_update = False
            self._use_networks(compiled=False)
            return self._gradient_step(replay_data)
        self.compile_seconds = time.perf_counter() - start
        log.info("compiled the update in %.1f s", self.compile_seconds)
        self.logger.record("train/compile_seconds", self.compile_seconds)
        return result


class DoubleDQN(TargetDQN):
    """Double DQN: the online network selects ``a'``, the target network evaluates it.

    ``V(s') = Q_target(s', argmax_a Q_online(s', a))``. Costs one more forward pass (online
    network on the next observations) per gradient step. Same arguments as DQN.
    """

    def next_state_values(self, next_obs: PyTorchObs) -> th.Tensor:
        return double_q_values(self.target_q(next_obs), self.online_q(next_obs))


class ExpectedSarsaDQN(TargetDQN):
    """Expected SARSA for the epsilon-greedy policy that the agent follows.

    ``V(s') = sum_a pi_eps(a|s') Q_target(s', a)`` with eps the *current* exploration rate
    (as the reference agent does), so the target follows epsilon's schedule: the mean of Q
    while exploring fully, Q-learning's max once eps = 0. Same arguments as DQN.
    """

    def next_state_values(self, next_obs: PyTorchObs) -> th.Tensor:
        return expected_sarsa_values(self.target_q(next_obs), self.exploration_rate)


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
        return softmax_values(self.target_q(next_obs), self.temperature)

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
