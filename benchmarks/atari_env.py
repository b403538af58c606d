"""Is our Breakout wrapper chain slower to step than SB3's stock AtariWrapper?

Sides, env steps/s on the same random actions: ours (``wrap_atari``); SB3's ``make_atari_env`` +
frame stack, with and without no-ops; the bare ALE env. Then one frame's preprocessing, ours vs SB3.
"""

import itertools
from collections.abc import Callable
from typing import Any

import ale_py
import cv2
import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecTransposeImage

from benchmarks.harness import Report, Side, kernel_seconds, parser, run, timed
from custom.atari_wrappers import AtariOptions, atari_make_kwargs, preprocess_frame, wrap_atari

ENV_ID = "ALE/Breakout-v5"
OURS, STOCK, BARE = "ours (wrap_atari)", "SB3 AtariWrapper + VecFrameStack", "bare ALE"
gym.register_envs(ale_py)


def ours() -> VecEnv:
    kwargs: dict[str, Any] = {"env_kwargs": atari_make_kwargs(AtariOptions())}
    kwargs["wrapper_class"] = wrap_atari
    kwargs["wrapper_kwargs"] = {"options": AtariOptions(), "training": True}
    return make_vec_env(ENV_ID, n_envs=1, seed=0, **kwargs)


def stock(noop_max: int = 30) -> VecEnv:
    kwargs = {"frame_skip": 1, "noop_max": noop_max}
    env = make_atari_env(ENV_ID, n_envs=1, seed=0, wrapper_kwargs=kwargs)
    return VecTransposeImage(VecFrameStack(env, n_stack=4))


def bare() -> Callable[[np.ndarray], None]:
    """The unwrapped env behind the same ``step(actions)`` call (no preprocessing)."""
    env = gym.make(ENV_ID)
    env.reset(seed=0)

    def step(actions: np.ndarray) -> None:
        if any(env.step(int(actions[0]))[2:4]):
            env.reset()

    return step


def rate(steps: int) -> Callable[[Callable[[np.ndarray], object]], float]:
    """Env steps per second over ``steps`` random actions (the same draw on every side)."""
    actions = np.random.default_rng(0).integers(4, size=(steps, 1))
    seconds = timed(lambda step: [step(action) for action in actions], steps)
    return lambda step: 1 / seconds(step)


def stepper(make: Callable[[], VecEnv]) -> Callable[[], Callable[[np.ndarray], object]]:
    """A side's build: the env, reset, behind its ``step``."""
    return lambda: (env := make(), env.reset())[0].step


def real_frames(n: int) -> list[np.ndarray]:
    """``n`` RGB frames of random play, 40 steps apart."""
    env, rng, frames = gym.make(ENV_ID), np.random.default_rng(0), []
    env.reset(seed=0)
    for t in range(40 * n):
        frame, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        frames += [frame] if t % 40 == 39 else []
        if terminated or truncated:
            env.reset()
    return frames


def warp_frame(frame: np.ndarray) -> np.ndarray:
    """SB3's WarpFrame arithmetic: cv2 RGB2GRAY on 210x160, INTER_AREA to 84x84."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (84, 84), interpolation=cv2.INTER_AREA)


def main() -> None:
    options = parser(__doc__, "atari_env.md", repeats=7, steps=4000).parse_args()
    report = Report("Breakout env throughput: `wrap_atari` vs SB3's AtariWrapper")
    measure = rate(options.steps)
    makes = {OURS: ours, STOCK: stock, "same, noop_max=0": lambda: stock(0)}
    sides = [*(Side(n, stepper(m), measure) for n, m in makes.items()), Side(BARE, bare, measure)]
    result = run(sides, options.repeats)
    ms = {s.name: 1e3 / result.median(s.name) for s in sides}
    ratios = {n: result.ratio(OURS, n) for n in ms}
    rows = [{"env": n, "steps/s": 1e3 / ms[n], "ms": ms[n], "ours / this": ratios[n]} for n in ms]
    figures = {f"{n}: ms over bare ALE": ms[n] - ms[BARE] for n in (OURS, STOCK)}
    figures["ours / stock"] = result.ratio(OURS, STOCK).median
    report.section("Env steps per second", rows, result=result, figures=figures)
    frames = itertools.cycle(real_frames(8))  # cycled: an env step's frame is in cache too
    work = {"`preprocess_frame`": preprocess_frame, "SB3 WarpFrame arithmetic": warp_frame}
    us = {n: 1e6 * kernel_seconds(lambda f=f: f(next(frames))) for n, f in work.items()}  # type: ignore[misc]
    rows = [
        {"preprocessing": n, "us": t, "% of our env step": t / ms[OURS] / 10} for n, t in us.items()
    ]
    report.section("Preprocessing one real frame alone (torch.utils.benchmark median)", rows)
    report.write(options.output)


if __name__ == "__main__":
    main()
