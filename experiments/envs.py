"""Config -> SB3 VecEnv, for every env suite (toy text, classic control, Atari, MinAtar).

SB3's ``make_vec_env`` puts its ``Monitor`` innermost, right on the raw env, so every score
reported (rollout/ep_rew_mean, evaluation) is the raw return of a whole game, whatever the
training wrappers do to rewards and episode ends on top of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ale_py
import gymnasium as gym
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.atari_wrappers import AtariWrapper
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

from custom.atari_wrappers import AtariOptions, atari_make_kwargs, wrap_atari
from custom.minatar_wrappers import RgbFrames, channels_first
from experiments.errors import ConfigError, require_one_of

gym.register_envs(ale_py)

#: MinAtar's gymnasium ids start with this (``MinAtar/Breakout-v0``).
MINATAR_PREFIX = "MinAtar/"
MINATAR_INSTALL = "pip install 'minatar>=1.0.15,<2'"

#: Evaluation envs get their own seeds, so they never replay the training env's games.
EVAL_SEED_OFFSET = 10_000
#: The ALE's standard game cut (Machado et al. 2018): 30 minutes of play, a truncation.
ALE_MAX_FRAMES = 108_000

WrapperFactory = Callable[..., gym.Env]


def _sb3_atari(env: gym.Env, training: bool, **kwargs: Any) -> gym.Env:
    """SB3's stock AtariWrapper; evaluation launches every ball and scores whole games.

    Evaluation keeps a life loss terminal: SB3's FireResetEnv presses FIRE only on reset, so
    without the life-loss reset a greedy policy that never fires idles until the frame cap.
    Whole-game scores are safe anyway: ``evaluate_policy`` counts a game only when the Monitor
    innermost reports one, and that Monitor sees raw rewards (clipping is turned off all the same
    so that the rewards an evaluation callback sees are raw too).
    """
    if not training:
        kwargs.update(terminal_on_life_loss=True, clip_reward=False)
    return AtariWrapper(env, **kwargs)


def _reference_atari(env: gym.Env, training: bool, **options: Any) -> gym.Env:
    """The reference agent's Atari setup (custom/atari_wrappers.py)."""
    return wrap_atari(env, AtariOptions(**options), training=training)


def _minatar(env: gym.Env, training: bool) -> gym.Env:
    """MinAtar grids channel-first and frames a GIF can take (custom/minatar_wrappers.py);
    training and evaluation alike, since MinAtar has no lives and its rewards need no clipping."""
    return channels_first(RgbFrames(env))


def register_minatar() -> bool:
    """Register MinAtar's gymnasium ids, once; False when the ``minatar`` package is missing.

    gymnasium 1.0 stopped loading plugins' entry points, so ``gym.make("MinAtar/...")`` fails
    until ``minatar.gym.register_envs()`` has run. Importing ``minatar.gym`` takes seconds
    (it imports matplotlib, seaborn and pandas), so this runs only for an id not registered
    yet, never for the other suites' envs.
    """
    if f"{MINATAR_PREFIX}Breakout-v0" in gym.registry:
        return True
    try:
        from minatar.gym import register_envs
    except ImportError:
        return False
    register_envs()
    return True


def ensure_registered(env_id: str) -> None:
    """Make ``env_id`` known to gymnasium where a plugin provides it (MinAtar).

    :raises ConfigError: for a MinAtar id when the ``minatar`` package is not installed
    """
    if env_id in gym.registry:
        return
    if not register_minatar() and env_id.lower().startswith(MINATAR_PREFIX.lower()):
        raise ConfigError(
            f"env.id={env_id}", f"MinAtar games need the minatar package: {MINATAR_INSTALL}"
        )


#: ``env.wrapper`` name -> factory taking (env, training, **env.wrapper_kwargs).
WRAPPERS: dict[str, WrapperFactory | None] = {
    "none": None,
    "sb3_atari": _sb3_atari,
    "atari": _reference_atari,
    "minatar": _minatar,
}


def wrapper_options(env_cfg: DictConfig) -> dict[str, Any]:
    """``env.wrapper_kwargs`` as a dict, after checking the wrapper and its option names."""
    require_one_of("env.wrapper", env_cfg.wrapper, WRAPPERS)
    options: dict[str, Any] = OmegaConf.to_container(env_cfg.wrapper_kwargs, resolve=True)  # type: ignore[assignment]
    if env_cfg.wrapper == "atari":
        try:
            AtariOptions(**options)
        except TypeError as error:
            known = ", ".join(AtariOptions.__dataclass_fields__)
            raise ConfigError("env.wrapper_kwargs", f"{error}; known options: {known}") from None
        except ValueError as error:
            raise ConfigError("env.wrapper_kwargs", str(error)) from None
    return options


def _make_kwargs(env_cfg: DictConfig, options: dict[str, Any]) -> dict[str, Any]:
    """gym.make kwargs: the env's own, plus what the reference Atari setup needs (frameskip...)."""
    kwargs: dict[str, Any] = OmegaConf.to_container(env_cfg.make_kwargs, resolve=True)  # type: ignore[assignment]
    if env_cfg.wrapper == "atari":
        kwargs.update(atari_make_kwargs(AtariOptions(**options)))
    if env_cfg.wrapper in ("atari", "sb3_atari"):
        # Whatever the id registers (gym's v4 ids had a 400k-frame TimeLimit), unless set in
        # env.make_kwargs: every game ends, and scores compare with the literature's.
        kwargs.setdefault("max_num_frames_per_episode", ALE_MAX_FRAMES)
    return kwargs


def make_env(cfg: DictConfig, training: bool) -> VecEnv:
    """Build the training or the evaluation VecEnv that ``cfg`` describes.

    :param cfg: the composed run config (uses ``env``, ``eval.n_envs`` and ``seed``).
    :param training: training envs may end episodes on life loss and shape rewards;
        evaluation envs always play full games on raw rewards.
    :return: a seeded VecEnv with a Monitor innermost in every sub-env.
    """
    env_cfg = cfg.env
    ensure_registered(env_cfg.id)
    options = wrapper_options(env_cfg)
    factory = WRAPPERS[env_cfg.wrapper]
    vec_env = make_vec_env(
        env_cfg.id,
        n_envs=env_cfg.n_envs if training else cfg.eval.n_envs,
        seed=cfg.seed if training else cfg.seed + EVAL_SEED_OFFSET,
        env_kwargs=_make_kwargs(env_cfg, options),
        wrapper_class=factory,
        wrapper_kwargs={"training": training, **options} if factory else None,
    )
    if env_cfg.frame_stack:
        return VecFrameStack(vec_env, n_stack=env_cfg.frame_stack)
    return vec_env
