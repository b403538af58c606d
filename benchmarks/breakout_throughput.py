"""How many Breakout env steps per second does our default pipeline train, against stock SB3?

Sides: ours, what ``python run.py env=breakout algo=dqn`` trains (``experiments.train.build``);
stock, ``benchmarks/stock.py``'s DQN with the same hyperparameters on SB3's AtariWrapper
(``env=breakout_sb3``'s env). One fixed epsilon on both (acting costs depend on it). Each side
runs in its own process, as for a user (ours sets flush-to-zero as run.py does). Timed: a
window of ``--steps`` env steps after ``--warmup`` untimed updates; the updates inside each
window are counted and must be equal. Then each side times its parts (update, acting, env step).
``--worker {ours,stock}`` is one side's process: it answers ``window`` / ``parts`` on stdin.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from subprocess import PIPE, Popen
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.harness import Report, Side, parser, ratio_rows, run, timed
from benchmarks.stock import stock_model
from experiments.config import compose_config
from experiments.train import build

TARGET, WORKERS = 1.5, ("ours", "stock")


class Window(BaseCallback):
    """Wall time and updates between env steps ``start`` and ``end`` (multiples of train_freq,
    so the window holds exactly ``steps / train_freq`` updates)."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__()
        self.start, self.end = start, end
        self.marks: list[tuple[float, int]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps in (self.start, self.end):
            self.marks.append((time.perf_counter(), self.model._n_updates))
        return True


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
    cfg = compose_config(overrides)
    model: Any
    env: Any
    if options.worker == "ours":
        env, _, model = build(cfg)
    else:
        model = stock_model(cfg, compose_config(["env=breakout_sb3"]))
        env = model.env
    freq = options.train_freqs[0]
    for request in sys.stdin:
        if request.strip() == "window":
            begin = max(model.num_timesteps, model.learning_starts) + options.warmup * freq
            start = -(-begin // freq) * freq
            window = Window(start, start + options.steps)
            model.learn(window.end - model.num_timesteps, window, reset_num_timesteps=False)
            (t0, u0), (t1, u1) = window.marks
            compiled = getattr(model, "compile_seconds", None)
            result = {"rate": options.steps / (t1 - t0), "updates": u1 - u0, "compiled": compiled}
        else:
            result = parts(model, env, freq)
        answer.write(json.dumps(result) + "\n")
        answer.flush()


def parts(model: Any, env: Any, train_freq: int, calls: int = 200) -> dict[str, float]:
    """Milliseconds per env step of an update / train_freq, a ``predict`` and an env step."""
    obs = env.reset()
    action = np.array([env.action_space.sample()])
    work = {
        "update / train_freq": lambda: model.train(1, model.batch_size),
        "predict": lambda: model.predict(obs),
        "env step": lambda: env.step(action),
    }
    out = {
        name: 1e3 * timed(lambda c: [c() for _ in range(calls)], calls)(call)
        for name, call in work.items()
    }
    out["update / train_freq"] /= train_freq
    return out


class Worker:
    """A side's process, and what its windows said besides the rate."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name, self.updates, self.last = name, list[int](), dict[str, Any]()
        command = [sys.executable, "-m", "benchmarks.breakout_throughput", "--worker", name, *argv]
        self.process = Popen(command, stdin=PIPE, stdout=PIPE, text=True)

    def ask(self, request: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker ended (exit {self.process.wait()})")
        return json.loads(line)

    def window(self) -> float:
        self.last = self.ask("window")
        self.updates.append(self.last["updates"])
        return self.last["rate"]


def main() -> None:
    options = parser(
        __doc__,
        "breakout_throughput.md",
        **dict(repeats=3, steps=2_000, warmup=50, buffer_size=50_000, learning_starts=1_000),
        **dict(seed=0, threads=0, epsilon=0.1, device="auto", compile=None, worker=None),
        train_freqs=[2, 4],
    ).parse_args()
    if options.worker:
        return worker(options)
    report = Report("Breakout training throughput: our default pipeline vs stock SB3 DQN")
    for freq in options.train_freqs:
        argv = [*sys.argv[1:], "--train-freqs", str(freq)]
        sides = [Side(n, functools.partial(Worker, n, argv), Worker.window) for n in WORKERS]
        result = run(sides, options.repeats, warmup=0)  # starts both processes, then the windows
        workers = result.built
        ours, stock = workers["ours"], workers["stock"]
        assert ours.updates == stock.updates, f"updates differ: {ours.updates}, {stock.updates}"
        rows = ratio_rows(result, ["ours", "stock"], "stock", "env steps/s", 1, at_least=TARGET)
        for row in rows:
            parts = workers[row["side"]].ask("parts")
            row |= {f"{k} ms": v for k, v in parts.items()}
            row["rest ms"] = 1e3 / row["env steps/s"] - sum(parts.values())
            row["updates per window"] = workers[row["side"]].updates[0]
            workers[row["side"]].process.communicate()
        compiled = f"compile seconds of ours: {ours.last.get('compiled')}"
        heading = f"Train every {freq} env steps ({options.steps} timed env steps a window)"
        report.section(heading, rows, [compiled], result)
    report.write(options.output)


if __name__ == "__main__":
    main()
