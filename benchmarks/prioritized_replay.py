"""What does prioritized replay cost against uniform replay: train step, sum tree at 1M, memory?

    python -m benchmarks.prioritized_replay [--repeats 31] [--quick]

Issue 26's three questions, each against the uniform replay it replaces: a Breakout
``TargetDQN.train`` step (sample, update, priority write-back) on real frames, paired per
repeat; sample(32) + priority update at 1M transitions, the sum tree alone and the whole
buffer, beside SB3's uniform ``sample``; bytes per transition at 1M rows from the arrays' sizes
(``np.zeros`` reserves, it does not touch) and the RSS growth of filling a smaller buffer.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer

from benchmarks import replay_buffer
from benchmarks.harness import Report, Side, cell, parser, ratio_rows, run, timed
from benchmarks.replay_buffer import ACTION_SPACE, OBS_SPACE, filled, rss, transitions
from benchmarks.train_step import BATCH_SIZE, BREAKOUT, VECTOR, model_side
from custom.buffers import FrameStackReplayBuffer
from custom.dqn import TargetDQN
from custom.prioritized import PrioritizedFrameStackReplayBuffer as PrioritizedFrames
from custom.prioritized import PrioritizedReplayBuffer
from custom.sum_tree import SumTree

BIG = 1_000_000  # capacity of every 1M question, and of the train-step buffers (tree depth)
#: The issue's goals: train-step ratio, microseconds at 1M, bytes per transition at 1M.
GOALS = {"ratio": 1.05, "tree_us": 200.0, "bytes": 7250.0}
Episode = tuple[Any, ...]  # one life, as replay_buffer.record_breakout returns it
UNIFORM, PRIORITIZED = "uniform (FrameStackReplayBuffer)", "prioritized"


def train_step(report: Report, episodes: list[Episode], rows: int, repeats: int) -> None:
    """Question 1: seconds per gradient step with uniform and prioritized frame replay."""
    sides = []
    for name, cls in ((UNIFORM, FrameStackReplayBuffer), (PRIORITIZED, PrioritizedFrames)):
        buffer = filled(cls, BIG, transitions(episodes), rows)
        sides.append(model_side((name, TargetDQN, {}), BREAKOUT, buffer, "cpu"))
    result = run(sides, repeats)
    ratio = result.ratio(PRIORITIZED, UNIFORM)
    table = ratio_rows(result, [UNIFORM, PRIORITIZED], UNIFORM, target=f"<= {GOALS['ratio']}")
    notes = [
        f"`TargetDQN.train(gradient_steps={BREAKOUT.gradient_steps}, batch_size={BATCH_SIZE})`, "
        f"SB3's Nature CNN, one torch thread, on the frame-once memory (capacity {BIG:,}, "
        f"{rows:,} rows of real random-play Breakout frames) without and with prioritisation "
        "(`PrioritizedFrameStackReplayBuffer`: stratified draw from the sum tree, importance "
        "weights in the loss, |TD error| written back after each step).",
    ]
    figures = {"ratio": ratio.median, "goal_met": ratio.median <= GOALS["ratio"]}
    report.section("1. Breakout train step", table, notes, result, figures)


def sample_1m(report: Report, samples: int, repeats: int) -> None:
    """Question 2: microseconds per sample(32) + priority update at 1M transitions."""
    rng = np.random.default_rng(0)
    priorities, td_errors = rng.uniform(0.01, 10.0, BIG), rng.uniform(0.01, 10.0, BATCH_SIZE)
    strata = np.arange(BATCH_SIZE)

    def tree() -> SumTree:
        built = SumTree(BIG)
        built.update(np.arange(BIG), priorities**0.6)
        return built

    def buffer(cls: type[ReplayBuffer]) -> ReplayBuffer:
        built = cls(BIG, VECTOR, ACTION_SPACE, device="cpu")
        built.observations[:] = rng.normal(size=built.observations.shape)
        built.next_observations[:] = rng.normal(size=built.next_observations.shape)
        built.full = True
        if isinstance(built, PrioritizedReplayBuffer):
            built.update_priorities(np.arange(BIG), priorities)
        return built

    def tree_part(t: SumTree) -> None:  # what sample and update_priorities do with the tree
        u = (strata + np.random.random_sample(BATCH_SIZE)) * (t.total / BATCH_SIZE)  # noqa: NPY002
        t.update(t.find(u), td_errors**0.6)

    def rounds(step: Callable[[Any], object]) -> Callable[[Any], float]:
        return timed(lambda built: [step(built) for _ in range(samples)], samples)

    def whole(b: PrioritizedReplayBuffer) -> None:
        b.update_priorities(b.sample(BATCH_SIZE).indices, td_errors)

    names = ["sum tree: draw 32 + search + update", "PrioritizedReplayBuffer: sample + update"]
    names.append("ReplayBuffer (SB3): sample")
    builds = [tree, lambda: buffer(PrioritizedReplayBuffer), lambda: buffer(ReplayBuffer)]
    steps: list[Callable[[Any], object]] = [tree_part, whole, lambda b: b.sample(BATCH_SIZE)]
    sides = zip(names, builds, map(rounds, steps), strict=True)
    result = run([Side(*side) for side in sides], repeats)
    tree_us, levels = 1e6 * result.median(names[0]), len(result.built[names[0]].levels)
    rows = ratio_rows(result, names, names[2], "us", 1e6)
    notes = [
        f"Sum tree under {GOALS['tree_us']:.0f} us: {cell(tree_us < GOALS['tree_us'])}. "
        f"{BIG:,} leaves in {levels} levels (fanout 32, top level searched at once); one "
        f"measurement is {samples} rounds. The buffers have CartPole's observation (so the tree, "
        "weights and bookkeeping dominate): the difference is what prioritisation adds per batch.",
    ]
    figures = {"tree_us": tree_us, "goal_met": tree_us < GOALS["tree_us"]}
    heading = "2. Sample 32 at 1M transitions, and the priority update"
    report.section(heading, rows, notes, result, figures)


def memory(report: Report, episodes: list[Episode], rows: int) -> None:
    """Question 3: bytes per transition at 1M from array sizes, and RSS of a filled buffer."""
    big = PrioritizedFrames(BIG, OBS_SPACE, ACTION_SPACE, device="cpu")
    stock = ReplayBuffer(1000, OBS_SPACE, ACTION_SPACE, device="cpu")
    arrays = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    figures = {
        "bytes": big.nbytes / BIG,
        "tree_bytes": big.tree.nbytes / BIG,
        "sb3_bytes": sum(getattr(stock, a).nbytes for a in arrays) / stock.buffer_size,
    }
    del big, stock
    gc.collect()
    before = rss()
    buffer = filled(PrioritizedFrames, rows, transitions(episodes))
    figures["rss_bytes"] = (rss() - before) * 2**30 / rows
    del buffer
    figures["goal_met"] = figures["bytes"] <= GOALS["bytes"]
    notes = [
        f"Bytes per transition at 1M rows (frames; tree included): {figures['bytes']:,.0f}, "
        f"SB3's `ReplayBuffer` {figures['sb3_bytes']:,.0f}; at most {GOALS['bytes']:,.0f}: "
        f"{cell(figures['goal_met'])}.",
        "",
        f"Array sizes of a {BIG:,}-row `PrioritizedFrameStackReplayBuffer` (frames with 1 % "
        "headroom, frame references, actions, rewards, flags, and the tree: "
        f"{figures['tree_bytes']:.2f} B per transition); SB3's `ReplayBuffer` stores `obs` and "
        f"`next_obs` in full. RSS growth while filling {rows:,} rows with real frames: "
        f"{figures['rss_bytes']:,.0f} B per transition (the arrays' figure is the bound).",
    ]
    report.section("3. Memory per transition", notes=notes, figures=figures)


def main() -> None:
    args = parser(__doc__, "prioritized_replay.md", repeats=31)
    args.add_argument("--quick", action="store_true", help="small fills and jobs, a smoke run")
    options = args.parse_args()
    # One thread: on a shared machine two intra-op threads stall each other (train_step.py).
    torch.set_num_threads(1)
    np.random.seed(0)  # noqa: NPY002 - the buffers draw from numpy's global stream, as SB3's
    steps, train_rows, rss_rows, samples = (
        (500, 2_000, 2_000, 20) if options.quick else (3000, 20_000, 100_000, 200)
    )
    episodes = replay_buffer.record_breakout(steps)
    report = Report("Prioritized replay: what it costs against uniform replay")
    train_step(report, episodes, train_rows, options.repeats)
    sample_1m(report, samples, options.repeats)
    memory(report, episodes, rss_rows)
    report.lines += [
        "",
        "What it does to learning, CartPole seeds 0-4 against uniform 1-step replay: "
        "[docs/reports/prioritized_cartpole.md](../reports/prioritized_cartpole.md).",
    ]
    report.write(options.output)


if __name__ == "__main__":
    main()
