"""How many Breakout env steps per second does our default pipeline train, against stock SB3?

Sides, each a process (``--worker``): ours (``env=breakout``), stock SB3 (benchmarks/stock.py),
one fixed epsilon. Timed: ``--steps`` env steps after ``--warmup`` updates, then each one's parts.
"""

import argparse
import functools
import json
import sys
import time
from subprocess import PIPE, Popen
from typing import Any

import numpy as np

from benchmarks.harness import Report, Side, parser, ratio_rows, run, timed
from benchmarks.stock import stock_model
from experiments.config import compose_config
from experiments.train import build

TARGET, WORKERS = 1.5, ("ours", "stock")


def worker(options: argparse.Namespace) -> None:
    """One side's process: build it, then answer each request line with a JSON line."""
    answer, sys.stdout = sys.stdout, sys.stderr  # what SB3 or ALE print must not mix in
    o = options
    overrides = (
        f"seed={o.seed} device={o.device} env=breakout dqn.buffer_size={o.buffer_size} "
        f"dqn.exploration_hold_steps=0 dqn.learning_starts={o.learning_starts} "
        f"dqn.train_freq={o.train_freqs[0]} dqn.exploration_initial_eps={o.epsilon} "
        f"dqn.exploration_final_eps={o.epsilon}"
    ).split()
    overrides += [f"torch_threads={o.threads}"] if o.threads else []
    overrides += [f"dqn.compile={o.compile}"] if o.compile else []
    cfg, ours = compose_config(overrides), options.worker == "ours"
    model: Any = build(cfg)[2] if ours else stock_model(cfg, compose_config(["env=breakout_sb3"]))
    freq = options.train_freqs[0]
    for request in sys.stdin:
        if request.strip() == "window":  # untimed up to a multiple of freq, then the window
            begin = max(model.num_timesteps, model.learning_starts) + options.warmup * freq
            model.learn(-(-begin // freq) * freq - model.num_timesteps, reset_num_timesteps=False)
            updates, start = model._n_updates, time.perf_counter()
            model.learn(options.steps, reset_num_timesteps=False)
            rate = options.steps / (time.perf_counter() - start)
            compiled = getattr(model, "compile_seconds", None)
            result = {"rate": rate, "updates": model._n_updates - updates, "compiled": compiled}
        else:
            result = parts(model, model.env, freq, calls=max(options.steps // 10, 1))
        print(json.dumps(result), file=answer, flush=True)


def parts(model: Any, env: Any, train_freq: int, calls: int) -> dict[str, float]:
    """Milliseconds per env step of an update / train_freq, a ``predict`` and an env step."""
    obs, action = env.reset(), np.array([env.action_space.sample()])
    work = {
        "update / train_freq": lambda: model.train(1, model.batch_size),
        "predict": lambda: model.predict(obs),
        "env step": lambda: env.step(action),
    }
    seconds = timed(lambda call: [call() for _ in range(calls)], calls)
    out = {name: 1e3 * seconds(call) for name, call in work.items()}
    out["update / train_freq"] /= train_freq
    return out


class Worker:
    """A side's process, and what its windows said besides the rate."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name, self.updates, self.last = name, list[int](), dict[str, Any]()
        command = [sys.executable, "-m", "benchmarks.breakout_throughput", "--worker", name, *argv]
        self.process = Popen(command, stdin=PIPE, stdout=PIPE, text=True)

    def ask(self, request: str) -> dict[str, Any]:
        print(request, file=self.process.stdin, flush=True)
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the {self.name} worker ended (exit {self.process.wait()})")
        return json.loads(line)

    def window(self) -> float:
        self.last = self.ask("window")
        self.updates.append(self.last["updates"])
        return self.last["rate"]


def main() -> None:
    sizes = {"repeats": 3, "steps": 2_000, "warmup": 50, "buffer_size": 50_000, "seed": 0}
    rest = {"learning_starts": 1_000, "threads": 0, "epsilon": 0.1, "device": "auto"}
    rest |= {"compile": None, "worker": None, "train_freqs": [2, 4]}
    options = parser(__doc__, "breakout_throughput.md", **sizes, **rest).parse_args()
    if options.worker:
        return worker(options)
    report = Report("Breakout training throughput: our default pipeline vs stock SB3 DQN")
    for freq in options.train_freqs:
        argv = [*sys.argv[1:], "--train-freqs", str(freq)]
        sides = [Side(n, functools.partial(Worker, n, argv), Worker.window) for n in WORKERS]
        result = run(sides, options.repeats, warmup=0)  # starts both processes, then the windows
        ours, stock = result.built["ours"], result.built["stock"]
        assert ours.updates == stock.updates, f"updates differ: {ours.updates}, {stock.updates}"
        rows = ratio_rows(result, WORKERS, "stock", "env steps/s", 1, target=f">= {TARGET}")
        for row, side in zip(rows, (ours, stock), strict=True):
            parts = side.ask("parts")
            row |= {f"{k} ms": v for k, v in parts.items()}
            row["rest ms"] = 1e3 / row["env steps/s"] - sum(parts.values())
            row["updates per window"] = side.updates[0]
            side.process.communicate()
        compiled = f"compile seconds of ours: {ours.last.get('compiled')}"
        heading = f"Train every {freq} env steps ({options.steps} timed env steps a window)"
        report.section(heading, rows, [compiled], result)
    report.write(options.output)


if __name__ == "__main__":
    main()
