"""Structured-config schemas and value checks for ``run.py``.

The schemas give Hydra the types, so a wrong type or an unknown key is refused while the
config is composed; :func:`validate` adds what types cannot express (ranges, names that must
exist, values that only make sense together) and raises :class:`ConfigError` with one line that
names the key and what is allowed.

Hyperparameters live in one block per algorithm family (``dqn`` or ``ppo``); a run carries only
the block of its own family, so its saved and W&B configs hold no other algorithm's keys.
"""

from __future__ import annotations

import copy
import difflib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_origin, get_type_hints

import gymnasium as gym
import torch
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from custom.losses import LOSSES
from experiments.algos import (
    ALGORITHMS,
    FAMILIES,
    AlgoSpec,
    algo_arguments,
    algo_spec,
    constructor_parameters,
    replay_buffer_class,
    resolve_config,
)
from experiments.envs import EVAL_SEED_OFFSET, ensure_registered, wrapper_options
from experiments.errors import ConfigError, require_one_of
from experiments.run_dir import config_differences
from experiments.tracking import check_logger

#: Hydra's config dir (``conf/``): what run.py composes from.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

__all__ = [
    "CONF_DIR",
    "Config",
    "ConfigError",
    "compose_config",
    "config_warnings",
    "register_configs",
    "run_config",
    "validate",
]


@dataclass
class EnvConfig:
    """Which environment and how it is wrapped; its hyperparameters live in ``hparams/``."""

    name: str = MISSING
    id: str = MISSING
    n_envs: int = 1
    policy: str = "MlpPolicy"
    make_kwargs: dict[str, Any] = field(default_factory=dict)
    wrapper: str = "none"
    wrapper_kwargs: dict[str, Any] = field(default_factory=dict)
    frame_stack: int = 0


@dataclass
class AlgoConfig:
    """The algorithm, by its name in ``experiments.algos.ALGORITHMS``, plus its own arguments.

    ``kwargs`` is checked against the algorithm's own schema (``AlgoSpec.arguments``).
    """

    name: str = MISSING
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class CommonParams:
    """Hyperparameters every algorithm takes; the learning rate may decay linearly to a floor.

    A key left null (in this and the family schemas below) takes the algorithm class's own
    default, read from its constructor's signature at launch and recorded in the run's config:
    SB3's defaults live in SB3 only (:func:`experiments.algos.resolve_config`).

    The decay runs over ``learning_rate_anneal_steps`` env steps; left null, it is the
    ``learning_rate_fraction`` of ``total_timesteps`` at launch, saved as steps so that a
    resume with a larger budget continues the schedule instead of rewinding it.
    """

    learning_rate: float | None = None
    learning_rate_final: float | None = None
    learning_rate_fraction: float = 1.0
    learning_rate_anneal_steps: int | None = None
    gamma: float | None = None
    policy_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReplayConfig:
    """Replay memory of the DQN family: ``standard`` (SB3's) or ``frames`` (each frame once).

    ``prioritized`` samples a transition with probability ``p^alpha / sum p^alpha``, ``p`` =
    |TD error| + ``eps``, and corrects the bias with importance weights whose exponent goes
    linearly from ``beta`` to ``beta_final`` over ``beta_anneal_steps`` env steps (null: the
    run's ``total_timesteps`` at launch, saved as steps). ``custom.prioritized`` has the maths.
    """

    kind: str = "standard"
    frame_headroom: float = 0.01
    prioritized: bool = False
    alpha: float = 0.6
    beta: float = 0.4
    beta_final: float = 1.0
    beta_anneal_steps: int | None = None
    eps: float = 1e-6


@dataclass
class DQNParams(CommonParams):
    """Shared by every DQN-family algorithm, so a comparison changes one thing at a time.

    Epsilon is held at ``exploration_initial_eps`` for ``exploration_hold_steps`` env steps and
    annealed linearly to ``exploration_final_eps`` over ``exploration_anneal_steps``, whatever
    ``total_timesteps`` is (the reference Breakout agent); left null, the anneal is SB3's
    ``exploration_fraction`` of ``total_timesteps`` at launch, saved as steps (a resume with a
    larger budget continues it rather than rewinding it).
    Algorithms that do not act epsilon-greedily (softmax) ignore the ``exploration_*`` values.
    ``loss`` is SB3's ``smooth_l1``, the reference agent's, or Dopamine's ``mse``
    (``custom.losses``).
    ``compile`` runs the gradient update's networks under ``torch.compile`` (the same update to
    float rounding; eager where compilation fails).
    """

    buffer_size: int | None = None
    learning_starts: int | None = None
    batch_size: int | None = None
    tau: float | None = None
    train_freq: int | None = None
    gradient_steps: int | None = None
    target_update_interval: int | None = None
    exploration_fraction: float | None = None
    exploration_initial_eps: float | None = None
    exploration_final_eps: float | None = None
    exploration_hold_steps: int = 0
    exploration_anneal_steps: int | None = None
    max_grad_norm: float | None = None
    #: n-step returns (1: one-step); on every replay kind, with or without prioritization
    n_steps: int | None = None
    loss: str = "smooth_l1"
    compile: bool = False
    replay: ReplayConfig = field(default_factory=ReplayConfig)


@dataclass
class PPOParams(CommonParams):
    """Stock SB3 PPO, to show that non-DQN algorithms plug in the same way."""

    learning_rate: float | None = None
    n_steps: int | None = None
    batch_size: int | None = None
    n_epochs: int | None = None
    gae_lambda: float | None = None
    clip_range: float | None = None
    ent_coef: float | None = None
    vf_coef: float | None = None
    max_grad_norm: float | None = None


@dataclass
class EvalConfig:
    """Periodic evaluation of whole games on a separate env; ``final_episodes`` for the last one.

    Actions are greedy, or epsilon-greedy with ``epsilon`` > 0. ``gif`` saves the best game of
    the run so far as ``best_episode.gif`` and logs it to W&B (needs an env that renders RGB).
    """

    freq: int = 10_000
    episodes: int = 10
    final_episodes: int | None = None
    n_envs: int = 1
    epsilon: float = 0.0
    gif: bool = False


@dataclass
class CheckpointConfig:
    """Periodic checkpoints under ``RUN_DIR/checkpoints/``, so that a run survives being killed.

    A checkpoint holds the model (optimizer included), the RNG states, the W&B run id and the
    CSV positions; ``replay`` adds the replay buffer (large: a 1M Breakout replay is about
    7 GB), kept in the latest checkpoint only. ``freq`` 0 writes one only on Ctrl-C/SIGTERM
    and at the end; ``keep`` is how many of the latest are kept.
    """

    freq: int = 25_000
    keep: int = 2
    replay: bool = False


@dataclass
class LoggerConfig:
    """Weights & Biases settings; ``mode: null`` means offline unless the user opted in."""

    backend: str = "wandb"
    project: str = "valuerl"
    entity: str | None = None
    mode: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class Config:
    """The whole composed config of one run.

    ``dqn`` and ``ppo`` are the hyperparameter blocks of the two algorithm families; the
    ``hparams/<family>/<env>.yaml`` file picked by the algorithm fills the one the run uses.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    dqn: DQNParams = field(default_factory=DQNParams)
    ppo: PPOParams = field(default_factory=PPOParams)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    #: a run dir to continue (``python run.py resume=RUN_DIR``); other overrides change its config
    resume: str | None = None
    #: end the run with one line when the loss or a Q-value is no longer finite
    stop_on_nan: bool = True
    seed: int = 0
    total_timesteps: int = 50_000
    device: str = "auto"
    torch_threads: int | None = None
    #: treat float32 denormals as zero on the CPU (flush-to-zero, denormals-are-zero)
    flush_denormal: bool = True
    progress_bar: bool = True
    log_interval: int = 10
    stats_freq: int = 10_000
    verbose: int = 0
    experiment_name: str | None = None


def register_configs() -> None:
    """Make the schema available to ``conf/config.yaml``'s defaults list as ``base_config``.

    Also registers ``${run_id:}``, which the run and sweep dir names end with: a random
    6-hex-digit id, cached in the config like Hydra's ``${now:}`` (so a multirun's jobs, which
    get a copy of the cache, share their sweep's id).
    """
    ConfigStore.instance().store(name="base_config", node=Config)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: secrets.token_hex(3), use_cache=True)


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``python run.py OVERRIDES`` composes, outside a Hydra app (no run dir, no
    checks): for benchmarks and tests that build what run.py builds."""
    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def run_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain data, without the other algorithm families' (unused) blocks."""
    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    own = _FAMILY_OF.get(str(OmegaConf.select(cfg, "algo.name", default="")))
    for family in FAMILIES:
        if family != own:
            container.pop(family, None)
    return container


def effective_config(cfg: DictConfig) -> DictConfig:
    """What a run trained from ``cfg`` records as its config: its own family's block, and its
    schedules in env steps (:func:`experiments.algos.resolve_config`). ``cfg`` itself
    is left as it is."""
    resolved = copy.deepcopy(cfg)
    resolve_config(resolved)
    return OmegaConf.create(run_config(resolved))


@dataclass(frozen=True)
class Rule:
    """A range check: ``accepts(value)`` must hold, else the error says ``it must be {text}``."""

    accepts: Callable[[Any], bool]
    text: str


_POSITIVE = Rule(lambda v: v > 0, "> 0")
_NON_NEGATIVE = Rule(lambda v: v >= 0, ">= 0")
_UNIT = Rule(lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
_DISCOUNT = Rule(lambda v: 0.0 < v <= 1.0, "in (0, 1]")
#: tau 0 would never move the target network: a run that learns against its initial weights
_SOFT_UPDATE = Rule(lambda v: 0.0 < v <= 1.0, "in (0, 1] (0 never updates the target network)")
_SEED = Rule(lambda v: 0 <= v < 2**32 - EVAL_SEED_OFFSET, f"in [0, {2**32 - EVAL_SEED_OFFSET})")

#: key -> rule; a key that is absent or null (another family's block, an unset option) is skipped.
_RULES: dict[str, Rule] = {
    "seed": _SEED,
    "total_timesteps": _POSITIVE,
    "torch_threads": _POSITIVE,
    "log_interval": _POSITIVE,
    "stats_freq": _NON_NEGATIVE,
    "env.n_envs": _POSITIVE,
    "env.frame_stack": _NON_NEGATIVE,
    "eval.freq": _NON_NEGATIVE,
    "eval.episodes": _POSITIVE,
    "eval.final_episodes": _POSITIVE,
    "eval.n_envs": _POSITIVE,
    "eval.epsilon": _UNIT,
    "checkpoint.freq": _NON_NEGATIVE,
    "checkpoint.keep": _POSITIVE,
    "algo.kwargs.temperature": _POSITIVE,
    **{
        f"{family}.{key}": rule
        for family in FAMILIES
        for key, rule in {
            "learning_rate": _POSITIVE,
            "learning_rate_final": _POSITIVE,
            "learning_rate_fraction": _UNIT,
            "learning_rate_anneal_steps": _NON_NEGATIVE,
            "gamma": _DISCOUNT,
            "max_grad_norm": _POSITIVE,
        }.items()
    },
    "dqn.buffer_size": _POSITIVE,
    "dqn.batch_size": _POSITIVE,
    "dqn.train_freq": _POSITIVE,
    "dqn.gradient_steps": _POSITIVE,
    "dqn.target_update_interval": _POSITIVE,
    "dqn.learning_starts": _NON_NEGATIVE,
    "dqn.tau": _SOFT_UPDATE,
    "dqn.exploration_fraction": _UNIT,
    "dqn.exploration_initial_eps": _UNIT,
    "dqn.exploration_final_eps": _UNIT,
    "dqn.exploration_hold_steps": _NON_NEGATIVE,
    "dqn.exploration_anneal_steps": _NON_NEGATIVE,
    "dqn.replay.frame_headroom": _UNIT,
    "dqn.replay.alpha": _NON_NEGATIVE,
    "dqn.replay.beta": _UNIT,
    "dqn.replay.beta_final": _UNIT,
    "dqn.replay.beta_anneal_steps": _NON_NEGATIVE,
    "dqn.replay.eps": _POSITIVE,
    "dqn.n_steps": _POSITIVE,
    "ppo.n_steps": _POSITIVE,
    "ppo.batch_size": _POSITIVE,
    "ppo.n_epochs": _POSITIVE,
    "ppo.gae_lambda": _UNIT,
    "ppo.clip_range": _POSITIVE,
}
_DEVICES = ("auto", "cpu", "cuda", "mps")


def validate(cfg: DictConfig) -> None:
    """Check what types alone cannot; raise :class:`ConfigError` on the first bad value.

    Runs before any run dir, W&B run or env exists, and needs no env or model: a bad value is
    reported in well under a second.

    :param cfg: the composed config.
    """
    spec = algo_spec(cfg.algo.name)
    _check_family(cfg, spec)
    algo_arguments(cfg)
    for key, rule in _RULES.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and not rule.accepts(value):
            raise ConfigError(f"{key}={value}", f"must be {rule.text}")
    _check_env(cfg)
    _check_policy_kwargs(cfg, spec)
    if spec.family == "dqn":
        require_one_of("dqn.loss", cfg.dqn.loss, LOSSES)
    if spec.replay:
        _check_replay(cfg)
    check_device(str(cfg.device))
    check_logger(cfg.logger)


def config_warnings(cfg: DictConfig) -> list[str]:
    """What is allowed but most likely a slip, one line each, for the run to print loudly.

    A run that makes no gradient step is legal (a smoke test of the pipeline, an evaluation of
    the initial network), so it is a warning, not an error.
    """
    spec = algo_spec(cfg.algo.name)
    warnings = []
    if spec.replay and cfg.dqn.learning_starts >= cfg.total_timesteps:
        warnings.append(
            f"dqn.learning_starts={cfg.dqn.learning_starts} is not below "
            f"total_timesteps={cfg.total_timesteps}: this run makes no gradient step and its "
            f"agent stays untrained; lower dqn.learning_starts to learn"
        )
    return warnings


_FAMILY_SCHEMAS: dict[str, type] = {"dqn": DQNParams, "ppo": PPOParams}
_FAMILY_OF = {name: spec.family for name, spec in ALGORITHMS.items()}


def _check_family(cfg: DictConfig, spec: AlgoSpec) -> None:
    """Nothing is set in another family's block: the run would silently ignore it.

    Every family's block is in the schema, so an override such as ``dqn.gamma=0.5`` with
    ``algo=ppo`` composes; any value there that differs from the schema's default was set by
    the user (or a preset), and is refused by its key.
    """
    for family, schema in _FAMILY_SCHEMAS.items():
        block = cfg.get(family)
        if family == spec.family or block is None:  # a saved run config keeps its own only
            continue
        changed = config_differences(OmegaConf.structured(schema), block)
        if changed:
            key, (_, value) = next(iter(changed.items()))
            raise ConfigError(
                f"{family}.{key}={value}",
                f"this run has no such block: algo={cfg.algo.name} takes {spec.family}.* "
                f"hyperparameters only (a run carries only its algorithm family's); set "
                f"{spec.family}.* instead",
            )


def _check_env(cfg: DictConfig) -> None:
    """The env id exists (with a did-you-mean, MinAtar's ids included) and its wrapper options
    are known."""
    env_id = cfg.env.id
    ensure_registered(env_id)
    if env_id not in gym.registry:
        near = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f"did you mean {' or '.join(near)}?" if near else "see gymnasium.pprint_registry()"
        raise ConfigError(f"env.id={env_id}", f"no such gymnasium env; {hint}")
    wrapper_options(cfg.env)


def _check_policy_kwargs(cfg: DictConfig, spec: AlgoSpec) -> None:
    """``policy_kwargs`` names a known policy argument, a boolean argument gets a boolean, no
    argument that takes a class (a config can only give a name), and the optimizer accepts
    its keywords."""
    key = f"{spec.family}.policy_kwargs"
    require_one_of("env.policy", cfg.env.policy, spec.cls.policy_aliases)
    policy = spec.cls.policy_aliases[cfg.env.policy]
    hints = _policy_arguments(policy)
    policy_kwargs = cfg[spec.family].policy_kwargs
    for name, value in policy_kwargs.items():
        if name not in hints:
            raise ConfigError(
                f"{key}.{name}", f"not an argument of {policy.__name__}; use {', '.join(hints)}"
            )
        if hints[name] is bool and not isinstance(value, bool):
            raise ConfigError(f"{key}.{name}={value}", "must be true or false")
        if get_origin(hints[name]) is type:
            raise ConfigError(
                f"{key}.{name}={value}",
                f"takes a Python class, which a config cannot give; pass it in Python, as "
                f"{spec.cls.__name__}(..., policy_kwargs={{'{name}': <class>}})",
            )
    _check_net_arch(key, policy_kwargs.get("net_arch"))
    _check_optimizer_kwargs(key, policy, policy_kwargs.get("optimizer_kwargs"))


def _check_optimizer_kwargs(key: str, policy: type, optimizer_kwargs: Any) -> None:
    """The policy's optimizer takes these keywords together, tried on a one-element tensor:
    torch checks a combination (``fused`` beside ``foreach``) only when it is built, with a
    RuntimeError that would otherwise end the run in a traceback."""
    if optimizer_kwargs is None:
        return
    if not isinstance(optimizer_kwargs, DictConfig):
        raise ConfigError(
            f"{key}.optimizer_kwargs={optimizer_kwargs}", "must be a mapping, e.g. {eps: 1e-5}"
        )
    kwargs = {str(name): value for name, value in optimizer_kwargs.items()}
    if "lr" in kwargs:  # SB3 passes the learning rate itself
        family = key.split(".")[0]
        raise ConfigError(f"{key}.optimizer_kwargs.lr", f"set {family}.learning_rate instead")
    declared = constructor_parameters(policy).get("optimizer_class")
    if declared is None:
        return
    optimizer = declared[1].default
    try:
        optimizer([torch.nn.Parameter(torch.zeros(1))], **kwargs)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError(
            f"{key}.optimizer_kwargs={kwargs}", f"{optimizer.__name__} refuses it: {error}"
        ) from None


def _check_net_arch(key: str, net_arch: Any) -> None:
    """Hidden layer widths are positive integers: torch builds a layer of 0 units silently
    and fails on a negative width deep inside SB3. On-policy ``net_arch`` may be
    ``{pi: [...], vf: [...]}``."""
    if net_arch is None:
        return
    layers = net_arch.values() if isinstance(net_arch, DictConfig) else [net_arch]
    widths = [width for layer in layers for width in (layer or [])]
    if not all(isinstance(width, int) and not isinstance(width, bool) for width in widths) or (
        min(widths, default=1) < 1
    ):
        shown = OmegaConf.to_container(net_arch) if OmegaConf.is_config(net_arch) else net_arch
        raise ConfigError(
            f"{key}.net_arch={shown}", "hidden layer widths must be integers >= 1, e.g. [64, 64]"
        )


_POLICY_POSITIONAL = ("observation_space", "action_space", "lr_schedule")


def _policy_arguments(policy: type) -> dict[str, Any]:
    """Keyword arguments of a policy class -> their type hints (None where unknown)."""
    parameters = constructor_parameters(policy)
    hints: dict[Any, dict[str, Any]] = {}  # per __init__
    for init in {init for init, _ in parameters.values()}:
        try:
            hints[init] = get_type_hints(init)
        except (NameError, TypeError):  # unresolvable annotations: names only
            hints[init] = {}
    return {
        name: hints[init].get(name)
        for name, (init, _) in parameters.items()
        if name not in _POLICY_POSITIONAL
    }


def _check_replay(cfg: DictConfig) -> None:
    """The buffer exists and fits the env."""
    dqn = cfg.dqn
    replay_buffer_class(dqn.replay.kind)
    if dqn.replay.kind == "frames":
        if cfg.env.wrapper not in ("atari", "sb3_atari"):
            raise ConfigError(
                "dqn.replay.kind=frames",
                "stores stacked Atari frames; this env has no frame stack, use standard",
            )
        if wrapper_options(cfg.env).get("life_loss_terminal") is False:
            raise ConfigError(
                "dqn.replay.kind=frames",
                "needs env.wrapper_kwargs.life_loss_terminal=true: a life loss then resets the "
                "history inside an episode, which a frame-once buffer cannot store; use standard",
            )


def check_device(device: str) -> None:
    """A device torch knows, and one this machine has (``auto`` always works)."""
    kind = device.split(":")[0]
    require_one_of("device", kind, _DEVICES)
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device}", "torch sees no CUDA GPU here; use auto or cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={device}", "torch sees no Apple GPU here; use auto or cpu")
