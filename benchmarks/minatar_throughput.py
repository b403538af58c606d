"""How many env steps per second does our pipeline train on a small network, against stock SB3?

    python -m benchmarks.minatar_throughput [--repeats 5] [--steps 2000] [--threads 1 2]
        [--env minatar_breakout] [--output docs/benchmarks/<env>_throughput.md]

Sides, on the env's DQN hyperparameters (conf/hparams/dqn/, MinAtar's network on MinAtar), one
fixed epsilon and smooth L1 on both: stock (SB3's DQN and DQNPolicy, one env, an update every
4 env steps; benchmarks/stock.py); ours with 1 env (what run.py builds, same loop); ours with
``--n-envs`` envs acting in one batch and n_envs/4 updates per batch. Each window trains
``--steps`` env steps after ``--learning-starts``; its updates are counted and must be equal
on every side. Then one update of each against its FLOP floor: the update's FLOPs at the rate
of the network's largest product (its largest dense layer), timed in the same repeats. Any env
of conf/env/ with a vector or MinAtar observation fits (``--env cartpole``, ``frozenlake``).
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

from benchmarks.harness import DOCS, Ratio, Report, Result, Side, parser, ratio_rows, run, timed
from benchmarks.stock import stock_model
from experiments.config import compose_config
from experiments.train import build

TARGET = ">= 5.0"  # ours / stock, env steps per second
#: env steps per update on every side (Dopamine's update_period)
UPDATE_PERIOD = 4
#: Gradient steps (and dense-layer products) timed per repeat in the update section
UPDATES_TIMED = 50


def config(options: Any, threads: int, extra: list[str]) -> DictConfig:
    """run.py's composed config for ``options.env``, with the benchmark's fixed values."""
    eps = options.epsilon
    fixed = f"""env={options.env} seed={options.seed} device=cpu logger=none dqn.loss=smooth_l1
        torch_threads={threads} dqn.learning_starts={options.learning_starts}
        dqn.exploration_hold_steps=0 dqn.exploration_initial_eps={eps}
        dqn.exploration_final_eps={eps}"""
    return compose_config([*fixed.split(), *extra])


class Trained:
    """A side's model, filled to ``learning_starts``, and the updates of each timed window."""

    def __init__(self, make: Callable[[DictConfig], Any], cfg: DictConfig, steps: int) -> None:
        self.model, self.steps, self.updates = make(cfg), steps, list[int]()
        self.model.learn(self.model.learning_starts + 8 * UPDATE_PERIOD * self.model.n_envs)

    def window(self) -> float:
        """Env steps per second over one window of ``steps`` env steps."""
        before = self.model._n_updates
        start = time.perf_counter()
        self.model.learn(self.steps, reset_num_timesteps=False)
        seconds = time.perf_counter() - start
        self.updates.append(self.model._n_updates - before)
        return self.steps / seconds


def update_section(result: Result, names: list[str], batch: int, repeats: int) -> Any:
    """One gradient step (``train(1)``) of each trained side, and the dense layer's product,
    timed in turn per repeat: each update against its FLOP floor at that repeat's rate."""
    models = {name: result.built[name].model for name in names}
    linears = [m for m in models["stock"].q_net.modules() if isinstance(m, torch.nn.Linear)]
    dense = max(linears, key=lambda layer: layer.weight.numel())
    product = (torch.rand(batch, dense.in_features), dense.weight.detach(), dense.bias.detach())
    dense_flops = 2 * batch * dense.in_features * dense.out_features
    train = timed(lambda m: [m.train(1, batch) for _ in range(UPDATES_TIMED)], UPDATES_TIMED)
    sides = [Side(name, functools.partial(lambda m: m, m), train) for name, m in models.items()]
    multiply = timed(lambda p: [F.linear(*p) for _ in range(4 * UPDATES_TIMED)], 4 * UPDATES_TIMED)
    timing = run([*sides, Side("dense layer", lambda: product, multiply)], repeats)
    rows = []
    for name, model in models.items():
        with FlopCounterMode(display=False) as counter:  # one gradient step's FLOPs
            model.train(1, batch)
        flops = counter.get_total_flops()
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
    args.add_argument("--env", default="minatar_breakout", help="a config of conf/env/")
    options = args.parse_args()
    if options.env != "minatar_breakout" and options.output == DOCS / "minatar_throughput.md":
        options.output = DOCS / f"{options.env}_throughput.md"
    n_envs = options.n_envs
    assert n_envs % UPDATE_PERIOD == 0 and options.steps % n_envs == 0
    batched = [
        f"env.n_envs={n_envs}",
        "dqn.train_freq=1",
        f"dqn.gradient_steps={n_envs // UPDATE_PERIOD}",
    ]
    one_env = ["env.n_envs=1", f"dqn.train_freq={UPDATE_PERIOD}", "dqn.gradient_steps=1"]
    report = Report(f"{options.env} training throughput: our pipeline vs stock SB3 DQN")
    ours = lambda cfg: build(cfg)[2]  # noqa: E731 (the model python run.py trains)
    for threads in options.threads:
        cfg = functools.partial(config, options, threads)
        label = f"{threads} torch thread{'s' if threads > 1 else ''}"
        builders = {
            "stock": (stock_model, one_env),
            "ours, 1 env": (ours, one_env),
            f"ours, {n_envs} envs": (ours, batched),
        }
        sides = [
            Side(name, functools.partial(Trained, make, cfg(extra), options.steps), Trained.window)
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
        heading = f"{label} ({options.steps} timed env steps a window, batch {batch})"
        report.section(heading, rows, result=result, figures=figures)
        names = ["stock", f"ours, {n_envs} envs"]
        rows, notes, timing = update_section(result, names, batch, options.repeats)
        report.section(f"{label}: one update", rows, notes, result=timing)
    report.write(options.output)


if __name__ == "__main__":
    main()
