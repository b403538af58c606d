"""Algorithm name -> class, hyperparameter family, own arguments and traits.

One table, no if-chains: a new algorithm is one row here and one file in ``conf/algo/``. What
is installed on a model (the step-based epsilon schedule, a replay buffer) follows from the
row's traits, never from the algorithm's name.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from custom.dqn import DoubleDQN, ExpectedSarsaDQN, SoftmaxDQN, TargetDQN
from custom.replay import REPLAY_KINDS, replay_buffer_setup
from custom.schedules import HoldThenLinear, set_exploration_schedule, set_learning_rate_schedule
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
    :param resumable: keys of its family's block that a resume may change: plain attributes
        (set on load through SB3's ``custom_objects``) and the step schedules; the others
        shape objects built once (networks, buffers, rollout sizes)
    :param resumable_arguments: its own arguments (``algo.kwargs.*``) that a resume may change
    """

    cls: type[BaseAlgorithm]
    family: str
    arguments: type = NoArguments
    replay: bool = False
    epsilon_greedy: bool = False
    resumable: tuple[str, ...] = ()
    resumable_arguments: tuple[str, ...] = ()


#: What a resume may change in every family: the learning rate and its step schedule, gamma.
_RESUMABLE_COMMON = (
    "learning_rate",
    "learning_rate_final",
    "learning_rate_anneal_steps",
    "gamma",
    "max_grad_norm",
)
_RESUMABLE_DQN = (
    *_RESUMABLE_COMMON,
    "batch_size",
    "gradient_steps",
    "learning_starts",
    "target_update_interval",
    "tau",
    "exploration_initial_eps",
    "exploration_final_eps",
    "exploration_hold_steps",
    "exploration_anneal_steps",
)
_RESUMABLE_PPO = (
    *_RESUMABLE_COMMON,
    "batch_size",
    "n_epochs",
    "gae_lambda",
    "clip_range",
    "ent_coef",
    "vf_coef",
)


#: ``dqn`` is TargetDQN with its default hook: numerically SB3's DQN (tests/test_dqn.py guards
#: it), plus the q/target logs and the dueling option that the other variants have too.
ALGORITHMS: dict[str, AlgoSpec] = {
    "dqn": AlgoSpec(TargetDQN, "dqn", replay=True, epsilon_greedy=True, resumable=_RESUMABLE_DQN),
    "double_dqn": AlgoSpec(
        DoubleDQN, "dqn", replay=True, epsilon_greedy=True, resumable=_RESUMABLE_DQN
    ),
    "expected_sarsa": AlgoSpec(
        ExpectedSarsaDQN, "dqn", replay=True, epsilon_greedy=True, resumable=_RESUMABLE_DQN
    ),
    "softmax": AlgoSpec(
        SoftmaxDQN,
        "dqn",
        SoftmaxArguments,
        replay=True,
        resumable=_RESUMABLE_DQN,
        resumable_arguments=("temperature",),
    ),
    "ppo": AlgoSpec(PPO, "ppo", resumable=_RESUMABLE_PPO),
}


#: Block keys that reach the class under another name (``dqn.compile`` -> ``compile_update``).
_RENAMED = {"compile": "compile_update"}


def constructor_parameters(cls: type) -> dict[str, tuple[Any, inspect.Parameter]]:
    """Keyword parameters of ``cls``'s constructor -> (the ``__init__`` that declares each, the
    parameter), following ``**kwargs`` up the class hierarchy as SB3's classes pass them on.

    TargetDQN takes ``loss`` and ``compile_update`` and passes the rest to SB3's DQN: both
    count. The config's own keys are told apart from the class's, SB3's defaults read and
    policy_kwargs checked from these signatures, not from hand-kept lists.
    """
    found: dict[str, tuple[Any, inspect.Parameter]] = {}
    for base in cls.__mro__:
        init = base.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        for p in parameters:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                found.setdefault(p.name, (init, p))
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return found


def constructor_defaults(cls: type) -> dict[str, Any]:
    """Keyword arguments of ``cls``'s constructor -> their defaults
    (``inspect.Parameter.empty`` where none)."""
    return {name: p.default for name, (_, p) in constructor_parameters(cls).items()}


def own_keys(spec: AlgoSpec, block: DictConfig) -> list[str]:
    """The block's keys that are the config's own (schedules, replay), not the class's.

    Keys added with ``+`` that the class does not take are not "own": they reach the class,
    which refuses them by name.
    """
    schema = OmegaConf.get_type(block)
    declared = {f.name for f in fields(schema)} if is_dataclass(schema) else set()
    taken = constructor_defaults(spec.cls)
    return [key for key in declared if _RENAMED.get(key, key) not in taken]


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

    The learning rate is the initial one; a decay (``learning_rate_final``) is a step schedule
    that :func:`install_step_schedules` sets on the model.
    """
    cfg = copy.deepcopy(cfg)
    resolve_config(cfg)  # on a copy: the caller's config is the caller's
    spec = algo_spec(cfg.algo.name)
    block = cfg[spec.family]
    params: dict[str, Any] = OmegaConf.to_container(block, resolve=True)  # type: ignore[assignment]
    for own in own_keys(spec, block):
        params.pop(own, None)
    for key, name in _RENAMED.items():
        if key in params:
            params[name] = params.pop(key)
    if spec.replay:
        params.update(_replay_kwargs(block))
    params.update(algo_arguments(cfg))
    return params


def replay_buffer_class(kind: str) -> type | None:
    """The uniform buffer class for ``dqn.replay.kind`` (None: SB3's), or a one-line error."""
    require_one_of("dqn.replay.kind", kind, REPLAY_KINDS)
    return REPLAY_KINDS[kind][0]


def _replay_kwargs(block: DictConfig) -> dict[str, Any]:
    """``replay_buffer_class`` and ``_kwargs`` for ``dqn.replay`` (``custom.replay``)."""
    replay = block.replay
    replay_buffer_class(replay.kind)
    options = {
        "frame_headroom": replay.frame_headroom,
        "alpha": replay.alpha,
        "beta": replay.beta,
        "beta_final": replay.beta_final,
        "beta_anneal_steps": replay.beta_anneal_steps or 0,
        "eps": replay.eps,
    }
    try:
        buffer_class, kwargs = replay_buffer_setup(
            replay.kind,
            n_steps=block.n_steps,
            gamma=block.gamma,
            prioritized=replay.prioritized,
            **options,
        )
    except ValueError as error:
        raise ConfigError("dqn.replay", str(error)) from None
    if buffer_class is None:
        return {}
    return {"replay_buffer_class": buffer_class, "replay_buffer_kwargs": kwargs}


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


def resolve_config(cfg: DictConfig) -> None:
    """Fill in, in ``cfg`` itself, what the config leaves to the class, and the schedules' steps.

    A family key left null takes the algorithm class's own default (SB3's), read from its
    signature, so the run's recorded config says what it trained with. Then the schedules
    given as fractions of the run become env steps.

    SB3 stretches ``exploration_fraction`` and a learning-rate decay over ``total_timesteps``,
    so resuming with a larger budget would rewind them (Dopamine's schedules take the step
    instead). At launch the fractions become ``exploration_anneal_steps`` and
    ``learning_rate_anneal_steps`` (where not given), which the saved config keeps: every
    schedule is then a function of env steps, whatever the budget becomes.
    """
    spec = algo_spec(cfg.algo.name)
    block = cfg[spec.family]
    for key, default in constructor_defaults(spec.cls).items():
        if key in block and block[key] is None and default is not inspect.Parameter.empty:
            block[key] = default
    total = int(cfg.total_timesteps)
    if spec.epsilon_greedy and block.get("exploration_anneal_steps") is None:
        block.exploration_anneal_steps = round(block.exploration_fraction * total)
    if block.get("learning_rate_anneal_steps") is None and block.learning_rate_final is not None:
        block.learning_rate_anneal_steps = round(block.learning_rate_fraction * total)
    replay = block.get("replay")
    if replay is not None and replay.get("prioritized") and replay.beta_anneal_steps is None:
        replay.beta_anneal_steps = total


def install_step_schedules(cfg: DictConfig, model: BaseAlgorithm) -> None:
    """Make epsilon and a decaying learning rate functions of env steps (``custom.schedules``).

    Resolves ``cfg``'s fractions into steps first (:func:`resolve_config`, a no-op when
    done); also called after SB3's ``load``, which rebuilds the stock, progress-based schedules.
    """
    resolve_config(cfg)
    spec = algo_spec(cfg.algo.name)
    block = cfg[spec.family]
    if spec.epsilon_greedy:
        epsilon = HoldThenLinear(
            start=block.exploration_initial_eps,
            end=block.exploration_final_eps,
            hold_steps=block.exploration_hold_steps,
            anneal_steps=block.exploration_anneal_steps,
        )
        set_exploration_schedule(model, epsilon)  # type: ignore[arg-type]
    if block.learning_rate_final is not None:
        learning_rate = HoldThenLinear(
            start=block.learning_rate,
            end=block.learning_rate_final,
            anneal_steps=block.learning_rate_anneal_steps,
        )
        set_learning_rate_schedule(model, learning_rate)
