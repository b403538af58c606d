"""How many MinAtar Breakout env steps per second does our pipeline train, against stock SB3?

    python -m benchmarks.minatar_throughput [--repeats 5] [--steps 2000] [--threads 1 2]

Sides, on the same hyperparameters (conf/hparams/dqn/minatar.yaml), the same network
(MinAtar's: conv 16x3x3, dense 128) and batch size, one fixed epsilon (acting costs depend on
it) and SB3's smooth L1 loss on both (stock DQN has no other):

- stock: SB3's ``DQN`` with its own ``DQNPolicy`` given :class:`custom.policies.MinAtarCNN` as
  features extractor (no head layers), torch's default Adam, one env from ``make_vec_env``
  with the channel-first wrapper every MinAtar user needs, an update every 4 env steps;
- ours, 1 env: what ``python run.py env=minatar_breakout`` trains
  (``experiments.train.build``), with one env and an update every 4 env steps;
- ours, batched: the same with ``--n-envs`` envs acting in one batch, and as many updates per
  call as keep one update per 4 env steps (``train_freq=1``, ``gradient_steps=n_envs/4``).

Each window trains ``--steps`` env steps after the replay holds ``--learning-starts``; the
updates inside each window are counted and must be equal on every side. All sides live in one
process per thread count: ours sets flush-to-zero (as run.py does) and stock then gets it too.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.harness import Ratio, Report, Result, Side, parser, ratio_rows, run, timed
from benchmarks.stock import stock_model
from experiments.config import compose_config
from experiments.train import build

TARGET = ">= 5.0"  # ours / stock, env steps per second
#: env steps per update on every side (Dopamine's update_period)
UPDATE_PERIOD = 4


def config(options: Any, threads: int, extra: list[str]) -> DictConfig:
    """run.py's composed MinAtar Breakout config, with the benchmark's fixed values."""
    return compose_config(
        [
            "env=minatar_breakout",
            f"seed={options.seed}",
            "device=cpu",
            "logger=none",
            f"torch_threads={threads}",
            f"dqn.learning_starts={options.learning_starts}",
            "dqn.exploration_hold_steps=0",
            f"dqn.exploration_initial_eps={options.epsilon}",
            f"dqn.exploration_final_eps={options.epsilon}",
            "dqn.loss=smooth_l1",
            *extra,
        ]
    )


def ours(cfg: DictConfig) -> Any:
    """The model ``python run.py`` builds for ``cfg``."""
    return build(cfg)[2]


class Trained:
    """A side's model, filled to ``learning_starts``, and the updates of each timed window."""

    def __init__(self, model: Any, steps: int) -> None:
        self.model, self.steps, self.updates = model, steps, list[int]()
        model.learn(model.learning_starts + 8 * UPDATE_PERIOD * model.n_envs)

    def window(self) -> float:
        """Env steps per second over one window of ``steps`` env steps."""
        before = self.model._n_updates
        start = time.perf_counter()
        self.model.learn(self.steps, reset_num_timesteps=False)
        seconds = time.perf_counter() - start
        self.updates.append(self.model._n_updates - before)
        return self.steps / seconds


def trained(
    make: Callable[[DictConfig], Any], options: Any, threads: int, extra: list[str]
) -> Trained:
    """A side built by ``make`` from the benchmark's config with ``extra`` overrides."""
    return Trained(make(config(options, threads, extra)), options.steps)


#: Gradient steps (and dense-layer products) timed per repeat in the update section
UPDATES_TIMED = 50


def update_flops(model: Any, batch: int) -> int:
    """Convolution and matrix FLOPs of one gradient step, as torch's FlopCounterMode counts."""
    with FlopCounterMode(display=False) as counter:
        model.train(1, batch)
    return counter.get_total_flops()


def dense_product(model: Any, batch: int) -> tuple[torch.Tensor, ...]:
    """The arguments of the network's largest matrix product: its dense layer at ``batch``."""
    dense = model.q_net.features_extractor.linear[0]
    return torch.rand(batch, dense.in_features), dense.weight.detach(), dense.bias.detach()


def update_section(result: Result, names: list[str], batch: int, repeats: int) -> Any:
    """One gradient step (``train(1)``) of each trained side, and the dense layer's product,
    timed in turn per repeat: each update against its FLOP floor at that repeat's rate."""
    models = {name: result.built[name].model for name in names}
    product = dense_product(models["stock"], batch)
    x, weight, _ = product
    dense_flops = 2 * batch * x.shape[1] * weight.shape[0]
    sides = [
        Side(
            name,
            functools.partial(lambda m: m, model),
            timed(lambda m: [m.train(1, batch) for _ in range(UPDATES_TIMED)], UPDATES_TIMED),
        )
        for name, model in models.items()
    ]
    dense = Side(
        "dense layer",
        lambda: product,
        timed(lambda p: [F.linear(*p) for _ in range(4 * UPDATES_TIMED)], 4 * UPDATES_TIMED),
    )
    timing = run([*sides, dense], repeats)
    rows = []
    for name, model in models.items():
        flops = update_flops(model, batch)
        to_floor = timing.ratio(name, "dense layer")  # update seconds / product seconds
        scale = dense_flops / flops  # product seconds / floor seconds
        rows.append(
            {
                "side": name,
                "update ms": 1e3 * timing.median(name),
                "MFLOP": flops / 1e6,
                "floor ms": 1e3 * timing.median("dense layer") * flops / dense_flops,
                "update / floor": Ratio(*(value * scale for value in to_floor)),
            }
        )
    rate = dense_flops / timing.median("dense layer")
    notes = [f"Floor: the update's FLOPs at the dense layer's rate, {rate / 1e9:.1f} GFLOP/s."]
    return rows, notes, timing


def main() -> None:
    defaults = {"steps": 2_000, "learning_starts": 1_000, "seed": 0, "n_envs": 8}
    args = parser(
        __doc__, "minatar_throughput.md", repeats=5, epsilon=0.1, threads=[1, 2], **defaults
    )
    options = args.parse_args()
    n_envs = options.n_envs
    assert n_envs % UPDATE_PERIOD == 0 and options.steps % n_envs == 0
    batched = [
        f"env.n_envs={n_envs}",
        "dqn.train_freq=1",
        f"dqn.gradient_steps={n_envs // UPDATE_PERIOD}",
    ]
    one_env = ["env.n_envs=1", f"dqn.train_freq={UPDATE_PERIOD}", "dqn.gradient_steps=1"]
    report = Report("MinAtar Breakout training throughput: our pipeline vs stock SB3 DQN")
    for threads in options.threads:
        builders = {
            "stock": (stock_model, one_env),
            "ours, 1 env": (ours, one_env),
            f"ours, {n_envs} envs": (ours, batched),
        }
        sides = [
            Side(name, functools.partial(trained, make, options, threads, extra), Trained.window)
            for name, (make, extra) in builders.items()
        ]
        torch.set_num_threads(threads)
        result = run(sides, options.repeats, warmup=0)
        updates = {name: built.updates for name, built in result.built.items()}
        assert len({tuple(u) for u in updates.values()}) == 1, f"updates differ: {updates}"
        rows = ratio_rows(result, list(builders), "stock", "env steps/s", 1.0, target=TARGET)
        for row in rows:
            row["updates in each window"] = updates[row["side"]]
        figures: dict[str, Any] = {"updates per window": updates}
        figures |= {f"{name} / stock": result.ratio(name, "stock").median for name in builders}
        batch = result.built["stock"].model.batch_size
        heading = f"{threads} torch thread{'s' if threads > 1 else ''}"
        heading += f" ({options.steps} timed env steps a window, batch {batch})"
        report.section(heading, rows, result=result, figures=figures)
        names = ["stock", f"ours, {n_envs} envs"]
        rows, notes, timing = update_section(result, names, batch, options.repeats)
        heading = f"{threads} torch thread{'s' if threads > 1 else ''}: one update"
        report.section(heading, rows, notes, result=timing)
    report.write(options.output)


if __name__ == "__main__":
    main()
