"""What is the fast update made of? Breakout's gradient step, stock SB3 vs each speed-up.

Sides: stock DQN; TargetDQN with default Adam, fused Adam, + channels-last (our default), +
compiled, on real Breakout transitions; then each one's parameter drift from the one it changes.
"""

import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.utils import get_device

from benchmarks.harness import Report, parser, ratio_rows, run
from benchmarks.train_step import BATCH_SIZE, BREAKOUT, BUFFER_SIZE, Variant, model_side
from custom.dqn import TargetDQN
from experiments.config import compose_config
from experiments.envs import make_env

FUSED = {"policy_kwargs": {"optimizer_kwargs": {"fused": True}}}
FAST = {"policy_kwargs": {"optimizer_kwargs": {"fused": True}, "channels_last": True}}
VARIANTS: list[Variant] = [
    ("DQN (stock SB3)", DQN, {}),
    ("TargetDQN, default Adam", TargetDQN, {}),
    ("TargetDQN, fused Adam", TargetDQN, FUSED),
    ("TargetDQN, fused Adam, channels-last (our default)", TargetDQN, FAST),
    ("TargetDQN, fused Adam, channels-last, compiled", TargetDQN, {**FAST, "compile_update": True}),
]
TWIN = [0, 0, 1, 2, 3]  # the variant each one changes one thing of: its drift is against that one


def breakout_buffer(device: str, seed: int = 0) -> ReplayBuffer:
    """A full replay buffer of random play on ``env=breakout``: real frames, as training sees."""
    env = make_env(compose_config(["env=breakout", "algo=dqn", f"seed={seed}"]), training=True)
    buffer = ReplayBuffer(BUFFER_SIZE, env.observation_space, env.action_space, device=device)
    rng, obs = np.random.default_rng(seed), env.reset()
    while not buffer.full:
        actions = rng.integers(0, env.action_space.n, size=env.num_envs)  # type: ignore[attr-defined]
        next_obs, rewards, dones, infos = env.step(actions)
        buffer.add(obs, next_obs, actions, rewards, dones, infos)  # type: ignore[arg-type]
        obs = next_obs
    env.close()
    return buffer


def parameter_drift(models: list[DQN], updates: int) -> list[float]:
    """Max |parameter difference| of each model from its :data:`TWIN` after the same updates."""
    for model in models:
        np.random.seed(0)  # noqa: NPY002 - SB3's buffers sample from the global generator
        model.train(gradient_steps=updates, batch_size=BATCH_SIZE)
    states = [model.policy.state_dict() for model in models]
    return [
        max((value - states[twin][key]).abs().max().item() for key, value in state.items())
        for state, twin in zip(states, TWIN, strict=True)
    ]


def main() -> None:
    args = parser(__doc__, "compiled_update.md", repeats=15, threads=0, device="auto", updates=100)
    options = args.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    device = str(get_device(options.device))
    report = Report("The fast update: Breakout's gradient step, stock SB3 vs each speed-up")
    buffer = breakout_buffer(device)
    sides = [model_side(variant, BREAKOUT, buffer, device) for variant in VARIANTS]
    result = run(sides, options.repeats)
    drift = parameter_drift([side.build() for side in sides], options.updates)
    rows = ratio_rows(result, [name for name, _, _ in VARIANTS], VARIANTS[0][0])
    key = f"max abs parameter difference after {options.updates} updates"
    rows[0][key] = "-"
    for row, diff, twin in zip(rows[1:], drift[1:], TWIN[1:], strict=True):
        row[key] = f"{diff:.1e} vs {VARIANTS[twin][0]}"
    compile_s = getattr(result.built[VARIANTS[-1][0]], "compile_seconds", None)
    heading = f"`train(gradient_steps={BREAKOUT.gradient_steps}, batch_size={BATCH_SIZE})`"
    report.section(heading, rows, [f"Compiling took {compile_s} s."], result, {"drift": drift})
    report.write(options.output)


if __name__ == "__main__":
    main()
