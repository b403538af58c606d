"""Algorithm name -> class, hyperparameter family, own arguments and traits.

One table, no if-chains: a new algorithm is one row here and one file in ``conf/algo/``. What
is installed on a model (the step-based epsilon schedule, a replay buffer) follows from the
row's traits, never from the algorithm's name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from custom.buffers import FrameStackReplayBuffer
from custom.dqn import DoubleDQN, ExpectedSarsaDQN, SoftmaxDQN, TargetDQN
from custom.schedules import HoldThenLinear, set_exploration_schedule
from experiments.errors import ConfigError, first_line, require_one_of

#: Hyperparameter families: each is a config block (``dqn.*``, ``ppo.*``) and a folder of
#: ``conf/hparams/``, shared by every algorithm of the family.
FAMILIES = ("dqn", "ppo")


@dataclass
class NoArguments:
    """Schema of ``algo.kwargs`` for an algorithm that takes no arguments of its own."""


@dataclass
class SoftmaxArguments:
    """Schema of ``algo.kwargs`` for ``softmax``: the Boltzmann temperature, > 0."""

    temperature: float = 0.001


@dataclass(frozen=True)
class AlgoSpec:
    """How to build one algorithm and what it needs.

    :param cls: the SB3 (or custom) class
    :param family: which hyperparameter block it takes (one of :data:`FAMILIES`)
    :param arguments: dataclass schema of its own arguments, ``algo.kwargs``
    :param replay: learns from a replay buffer (``dqn.replay.*`` applies)
    :param epsilon_greedy: acts epsilon-greedily (the step-based epsilon schedule applies)
    """

    cls: type[BaseAlgorithm]
    family: str
    arguments: type = NoArguments
    replay: bool = False
    epsilon_greedy: bool = False


#: ``dqn`` is TargetDQN with its default hook: numerically SB3's DQN (tests/test_dqn.py guards
#: it), plus the q/target logs and the dueling option that the other variants have too.
ALGORITHMS: dict[str, AlgoSpec] = {
    "dqn": AlgoSpec(TargetDQN, "dqn", replay=True, epsilon_greedy=True),
    "double_dqn": AlgoSpec(DoubleDQN, "dqn", replay=True, epsilon_greedy=True),
    "expected_sarsa": AlgoSpec(ExpectedSarsaDQN, "dqn", replay=True, epsilon_greedy=True),
    "softmax": AlgoSpec(SoftmaxDQN, "dqn", SoftmaxArguments, replay=True),
    "ppo": AlgoSpec(PPO, "ppo"),
}

#: ``dqn.replay.kind`` -> replay buffer class for the DQN family (None: SB3's ReplayBuffer).
REPLAY_BUFFERS: dict[str, type | None] = {
    "standard": None,
    "frames": FrameStackReplayBuffer,
}

#: Keys of a hyperparameter block that are ours, not constructor arguments of the class.
_OWN_KEYS = (
    "learning_rate_final",
    "learning_rate_fraction",
    "exploration_hold_steps",
    "exploration_anneal_steps",
    "replay",
)


def algo_spec(name: str) -> AlgoSpec:
    """Look an algorithm up by name, with a one-line error that lists the known ones."""
    require_one_of("algo", name, ALGORITHMS)
    return ALGORITHMS[name]


def algo_arguments(cfg: DictConfig) -> dict[str, Any]:
    """``algo.kwargs`` checked against the algorithm's own schema (names and types).

    :raises ConfigError: for an unknown argument or a value of the wrong type
    """
    spec = algo_spec(cfg.algo.name)
    schema = OmegaConf.structured(spec.arguments)
    try:
        merged = OmegaConf.merge(schema, cfg.algo.kwargs)
    except ConfigKeyError as error:
        known = ", ".join(field.name for field in fields(spec.arguments)) or "none"
        raise ConfigError(
            f"algo.kwargs.{error.key}", f"unknown argument; algo={cfg.algo.name} takes: {known}"
        ) from None
    except OmegaConfBaseException as error:
        subject = f"algo.kwargs.{error.key}={error.value}"
        raise ConfigError(subject, first_line(str(error))) from None
    return OmegaConf.to_container(merged)  # type: ignore[return-value]


def algo_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """Constructor keyword arguments for ``cfg.algo`` from its family's hyperparameter block.

    ``learning_rate_final`` turns the learning rate into SB3's linear schedule down to that
    floor over the first ``learning_rate_fraction`` of training.
    """
    spec = algo_spec(cfg.algo.name)
    block = cfg[spec.family]
    params: dict[str, Any] = OmegaConf.to_container(block, resolve=True)  # type: ignore[assignment]
    for own in _OWN_KEYS:
        params.pop(own, None)
    initial, final = block.learning_rate, block.learning_rate_final
    if final is not None:
        params["learning_rate"] = LinearSchedule(initial, final, block.learning_rate_fraction)
    if spec.replay:
        params.update(_replay_kwargs(block.replay))
    if spec.family == "dqn":
        params["compile_update"] = params.pop("compile")
    params.update(algo_arguments(cfg))
    return params


def replay_buffer_class(kind: str) -> type | None:
    """The buffer class for ``dqn.replay.kind``, with a one-line error listing the known ones."""
    require_one_of("dqn.replay.kind", kind, REPLAY_BUFFERS)
    return REPLAY_BUFFERS[kind]


def _replay_kwargs(replay: DictConfig) -> dict[str, Any]:
    buffer_class = replay_buffer_class(replay.kind)
    if buffer_class is None:
        return {}
    return {
        "replay_buffer_class": buffer_class,
        "replay_buffer_kwargs": {"frame_headroom": replay.frame_headroom},
    }


def build_model(cfg: DictConfig, env: VecEnv) -> BaseAlgorithm:
    """Instantiate the configured algorithm on ``env``, seeded, on ``cfg.device``.

    :raises ConfigError: when the class refuses the configured values (the message is the
        class's own, e.g. a policy keyword of the wrong kind)
    """
    spec = algo_spec(cfg.algo.name)
    try:
        model = spec.cls(
            cfg.env.policy,
            env,
            seed=cfg.seed,
            device=cfg.device,
            verbose=cfg.verbose,
            **algo_kwargs(cfg),
        )
    except (TypeError, ValueError, AssertionError) as error:  # SB3 asserts on a policy misfit
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(
            f"algo={cfg.algo.name} on env={cfg.env.name}",
            f"{spec.cls.__name__} refused this config: {first_line(str(error)) or repr(error)}",
        ) from error
    install_step_schedules(cfg, model)
    return model


def install_step_schedules(cfg: DictConfig, model: BaseAlgorithm) -> None:
    """Make epsilon a function of env steps where the config asks for it.

    Also needed after SB3's ``load``, which rebuilds the stock schedule (``custom.schedules``).
    """
    spec = algo_spec(cfg.algo.name)
    block = cfg[spec.family]
    if spec.epsilon_greedy and block.exploration_anneal_steps is not None:
        epsilon = HoldThenLinear(
            start=block.exploration_initial_eps,
            end=block.exploration_final_eps,
            hold_steps=block.exploration_hold_steps,
            anneal_steps=block.exploration_anneal_steps,
        )
        set_exploration_schedule(model, epsilon)  # type: ignore[arg-type]
