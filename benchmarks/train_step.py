"""Does a custom DQN class's ``train()`` cost more than stock SB3 DQN's, for the same update?

Sides: stock ``DQN``, each of our classes, DoubleDQN's extra forward pass alone (one buffer of
random transitions); timed: ``model.train`` per step. Then the reference Q-network vs Nature CNN.
"""

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger

from benchmarks.harness import Report, Side, parser, ratio_rows, run, timed
from custom.dqn import DoubleDQN, ExpectedSarsaDQN, SoftmaxDQN, TargetDQN

BATCH_SIZE, BUFFER_SIZE = 32, 2_000
STOCK, FORWARD = "DQN (stock SB3)", "(no-grad online forward pass alone)"
Variant = tuple[str, type[DQN], dict[str, Any]]
CLASSES: list[Variant] = [(c.__name__, c, {}) for c in (TargetDQN, DoubleDQN, ExpectedSarsaDQN)]
CLASSES = [(STOCK, DQN, {}), *CLASSES, ("SoftmaxDQN", SoftmaxDQN, {"temperature": 5e-5})]
NET, LOSS = 'TargetDQN, network="reference"', {"policy_kwargs": {"network": "reference"}}
NETWORKS: list[Variant] = [("TargetDQN, Nature CNN (SB3's CnnPolicy)", TargetDQN, {})]
NETWORKS += [
    (NET, TargetDQN, LOSS),
    (f'{NET}, loss="reference"', TargetDQN, {**LOSS, "loss": "reference"}),
]


class Setup(NamedTuple):
    """A network's input and output shapes, and how ``learn()`` calls ``train()`` on it."""

    name: str
    policy: str
    space: gym.spaces.Box
    n_actions: int
    gradient_steps: int
    calls: int = 1  # train() calls per measurement


IMAGE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
VECTOR = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
BREAKOUT = Setup("Breakout: Nature CNN, obs (4, 84, 84) uint8, 4 actions", "CnnPolicy", IMAGE, 4, 8)
SETUPS = [
    BREAKOUT,
    Setup("CartPole: MLP [64, 64], obs (4,) float32, 2 actions", "MlpPolicy", VECTOR, 2, 64),
    # conf/hparams/dqn/cartpole.yaml: learn() asks for 8 gradient steps every 16 env steps
    Setup("CartPole: MLP [64, 64], as `learn()` calls it", "MlpPolicy", VECTOR, 2, 8, calls=8),
]


def random_buffer(setup: Setup, device: str) -> ReplayBuffer:
    """A full replay buffer of random transitions shaped like ``setup``'s."""
    rng, space, image = np.random.default_rng(0), setup.space, setup.space.dtype == np.uint8
    buffer = ReplayBuffer(BUFFER_SIZE, space, gym.spaces.Discrete(setup.n_actions), device=device)
    for array in (buffer.observations, buffer.next_observations):
        array[:] = rng.integers(0, 256, array.shape) if image else rng.normal(size=array.shape)
    buffer.actions[:] = rng.integers(0, setup.n_actions, buffer.actions.shape)
    buffer.rewards[:] = rng.normal(size=buffer.rewards.shape)
    buffer.dones[:] = rng.random(buffer.dones.shape) < 0.05
    buffer.full = True
    return buffer


class ShapeEnv(gym.Env[np.ndarray, np.int64]):
    """An env that only has spaces: SB3 needs one to build a model; nothing steps it."""

    def __init__(self, setup: Setup) -> None:
        self.observation_space = setup.space
        self.action_space = gym.spaces.Discrete(setup.n_actions)


def model_side(variant: Variant, setup: Setup, buffer: ReplayBuffer, device: str) -> Side:
    """A side that times ``train()`` of one class, on ``buffer``."""
    name, cls, kwargs = variant

    def build() -> DQN:
        model = cls(setup.policy, ShapeEnv(setup), buffer_size=1, seed=0, device=device, **kwargs)
        model.replay_buffer = buffer
        model.exploration_rate = 0.1  # a mid-training value, for expected SARSA
        model.set_logger(Logger(folder=None, output_formats=[]))
        return model

    def train(model: DQN) -> None:
        for _ in range(setup.calls):
            model.train(gradient_steps=setup.gradient_steps, batch_size=BATCH_SIZE)

    return Side(name, build, timed(train, setup.gradient_steps * setup.calls))


def forward_side(setup: Setup, buffer: ReplayBuffer, device: str) -> Side:
    """The no-grad online forward pass on a batch of next observations that DoubleDQN adds."""
    steps, model = setup.gradient_steps * setup.calls, model_side(CLASSES[0], setup, buffer, device)
    batch = buffer.sample(BATCH_SIZE).next_observations

    @torch.no_grad()
    def forward(net: torch.nn.Module) -> None:
        for _ in range(steps):
            net(batch)

    return Side(FORWARD, lambda: model.build().q_net, timed(forward, steps))


def main() -> None:
    # One thread by default: two intra-op threads on two shared cores stall each other.
    options = parser(__doc__, "train_step.md", repeats=31, threads=1, device="cpu").parse_args()
    torch.set_num_threads(options.threads)
    report, device = Report("Train-step cost: custom DQN classes vs stock SB3 DQN"), options.device
    for setup in SETUPS:
        buffer = random_buffer(setup, device)
        sides = [model_side(variant, setup, buffer, device) for variant in CLASSES]
        result = run([*sides, forward_side(setup, buffer, device)], options.repeats)
        rows = ratio_rows(result, list(result.values), STOCK, target="<= 1.05")  # every side
        pairs = zip(result.values[STOCK], result.values[FORWARD], strict=True)
        result.values["stock + forward"] = [s + f for s, f in pairs]
        fair = result.ratio("DoubleDQN", "stock + forward")
        rows[-1]["<= 1.05"] = None  # the forward pass alone has no target; DoubleDQN net of it:
        fair_row = ("DoubleDQN / (stock + forward)", None, fair, fair.median <= 1.05)
        rows.append(dict(zip(rows[0], fair_row, strict=True)))
        calls = f" x {setup.calls} calls" if setup.calls > 1 else ""
        report.section(f"{setup.name}: N = {setup.gradient_steps}{calls}", rows, result=result)
    buffer = random_buffer(BREAKOUT, device)
    result = run([model_side(v, BREAKOUT, buffer, device) for v in NETWORKS], options.repeats)
    rows = ratio_rows(result, [name for name, _, _ in NETWORKS], NETWORKS[0][0])
    report.section("Breakout: the reference Q-network vs Nature CNN", rows, result=result)
    report.write(options.output)


if __name__ == "__main__":
    main()
