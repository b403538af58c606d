"""Stock SB3 configured from run.py's composed config: the baseline the benchmarks measure against.

Stock is what a user writing SB3 by hand runs: SB3's ``DQN``, policy (NCHW, Adam's per-tensor
loop) and env helpers, with run.py's hyperparameters, seed and torch threads.
"""

import json
import sys
from copy import deepcopy
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

from custom.minatar_wrappers import channels_first
from custom.policies import MinAtarCNN
from experiments.algos import resolve_config
from experiments.config import compose_config
from experiments.envs import register_minatar

#: ``dqn`` keys that stock DQN takes as they are.
STOCK_KEYS = (  # noqa: SIM905 - one string reads as one list
    "buffer_size learning_starts batch_size tau gamma train_freq gradient_steps"
    " target_update_interval exploration_initial_eps exploration_final_eps max_grad_norm"
).split()
#: Policy keywords of ours (custom/policies.py) that SB3's own policies do not take.
OUR_POLICY_KEYWORDS = ("channels_last", "dueling", "network")


def stock_policy_kwargs(policy_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Our policy arguments without our speed-ups (fused Adam, channels-last): the same update
    to float rounding. MinAtar's network is given to SB3's policy as its features extractor,
    as a user would. :raises ValueError: for a network stock SB3 cannot build (dueling...)"""
    if policy_kwargs.get("dueling", False):
        raise ValueError("stock SB3 has no dueling policy keyword")
    optimizer_kwargs = dict(policy_kwargs.get("optimizer_kwargs", {}))
    optimizer_kwargs.pop("fused", None)
    stock = {k: v for k, v in policy_kwargs.items() if k not in OUR_POLICY_KEYWORDS}
    network = policy_kwargs.get("network", "sb3")
    if network == "minatar":
        stock |= {"features_extractor_class": MinAtarCNN, "net_arch": []}
    elif network != "sb3":
        raise ValueError(f"stock SB3 has no network={network!r} policy keyword")
    return {**stock, "optimizer_kwargs": optimizer_kwargs}


def stock_env(cfg: dict[str, Any]) -> VecEnv:
    """The training env as SB3 alone builds it: make_vec_env, or make_atari_env + stacking."""
    env, kwargs = cfg["env"], {"n_envs": 1, "seed": cfg["seed"]}
    kwargs["env_kwargs"] = env["make_kwargs"]
    if env["wrapper"] == "sb3_atari":
        vec_env = make_atari_env(env["id"], wrapper_kwargs=env["wrapper_kwargs"], **kwargs)
        return VecFrameStack(vec_env, n_stack=env["frame_stack"])
    if env["wrapper"] == "minatar":
        register_minatar()
        return make_vec_env(env["id"], wrapper_class=channels_first, **kwargs)
    assert env["wrapper"] == "none", f"no stock setup for wrapper {env['wrapper']}"
    return make_vec_env(env["id"], **kwargs)


def exploration_fraction(dqn: dict[str, Any], total_timesteps: int) -> float:
    """SB3's ``exploration_fraction`` for run.py's anneal over ``exploration_anneal_steps``
    (held for none): that fraction of the run, above 1 for a run shorter than the anneal."""
    if dqn["exploration_anneal_steps"] is None:
        return dqn["exploration_fraction"]
    return dqn["exploration_anneal_steps"] / total_timesteps


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """``cfg`` as a plain dict with what run.py fills in at launch (the class defaults of keys
    left null, schedules in env steps); ``cfg`` itself is left as it is."""
    copy = deepcopy(cfg)
    resolve_config(copy)
    return OmegaConf.to_container(copy, resolve=True)  # type: ignore[return-value]


def stock_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """SB3 DQN's keywords for run.py's composed config ``cfg`` (:func:`resolved`), but the
    env, policy class, seed and device."""
    dqn = cfg["dqn"]
    # What SB3's DQN cannot express must be at its stock value, else the work would differ.
    assert dqn["loss"] == "smooth_l1" and dqn["exploration_hold_steps"] == 0, dqn
    learning_rate = dqn["learning_rate"]
    if dqn["learning_rate_final"] is not None:
        learning_rate = LinearSchedule(
            learning_rate, dqn["learning_rate_final"], dqn["learning_rate_fraction"]
        )
    return {
        "learning_rate": learning_rate,
        "policy_kwargs": stock_policy_kwargs(dqn["policy_kwargs"]),
        "exploration_fraction": exploration_fraction(dqn, cfg["total_timesteps"]),
        **{key: dqn[key] for key in STOCK_KEYS},
    }


def stock_model(cfg: DictConfig, env_cfg: DictConfig | None = None) -> DQN:
    """Stock SB3's DQN for run.py's composed config ``cfg``, torch threads set as run.py does,
    on the env SB3 alone builds for ``env_cfg`` (default: ``cfg``; e.g. ``env=breakout_sb3``)."""
    plain = resolved(cfg)
    if env_cfg is not None:
        plain["env"] = OmegaConf.to_container(env_cfg.env, resolve=True)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    env, kwargs = stock_env(plain), stock_kwargs(plain)
    return DQN(plain["env"]["policy"], env, seed=cfg.seed, device=cfg.device, **kwargs)


def main() -> None:
    """``python -m benchmarks.stock OVERRIDE...``: what stock SB3 would get for run.py's config
    (JSON), or one line saying why stock SB3 cannot train it."""
    plain = resolved(compose_config(sys.argv[1:]))
    try:
        print(json.dumps(stock_kwargs(plain), default=str))
    except ValueError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
