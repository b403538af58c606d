"""What does prioritized replay cost against uniform replay: train step, sum tree at 1M, memory?

Sides: uniform vs prioritized (Breakout train step); sum tree, whole buffer, SB3 sample at 1M.
"""

import gc
from collections.abc import Callable

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer

from benchmarks import replay_buffer
from benchmarks.harness import Report, Side, cell, parser, ratio_rows, run, timed
from benchmarks.replay_buffer import ACTION_SPACE, OBS_SPACE, SB3_ARRAYS, filled, rss, transitions
from benchmarks.train_step import BATCH_SIZE, BREAKOUT, VECTOR, model_side
from custom.buffers import FrameStackReplayBuffer
from custom.dqn import TargetDQN
from custom.prioritized import PrioritizedFrameStackReplayBuffer, PrioritizedReplayBuffer
from custom.sum_tree import SumTree

BIG = 1_000_000  # capacity of every 1M question, and of the train-step buffers (tree depth)
GOALS = {"ratio": 1.05, "tree_us": 200.0, "bytes": 7250.0}  # issue 26's: ratio, us, B at 1M
SIZES = {False: (3000, 20_000, 100_000, 200), True: (500, 2_000, 2_000, 20)}  # by --quick
UNIFORM, PRIORITIZED = "uniform (FrameStackReplayBuffer)", "prioritized"
TREE, WHOLE = "sum tree: draw 32 + search + update", "PrioritizedReplayBuffer: sample + update"
SB3 = "ReplayBuffer (SB3): sample"


def train_step(report: Report, lives: list[tuple], rows: int, repeats: int) -> None:
    pairs = ((UNIFORM, FrameStackReplayBuffer), (PRIORITIZED, PrioritizedFrameStackReplayBuffer))
    buffers = {name: filled(cls, BIG, transitions(lives), rows) for name, cls in pairs}
    sides = [model_side((name, TargetDQN, {}), BREAKOUT, b, "cpu") for name, b in buffers.items()]
    result = run(sides, repeats)
    ratio = result.ratio(PRIORITIZED, UNIFORM)
    table = ratio_rows(result, [UNIFORM, PRIORITIZED], UNIFORM, target=f"<= {GOALS['ratio']}")
    note = (
        f"`TargetDQN.train(gradient_steps={BREAKOUT.gradient_steps}, batch_size={BATCH_SIZE})`, "
        f"SB3's Nature CNN, one torch thread, on the frame-once memory (capacity {BIG:,}, "
        f"{rows:,} rows of real random-play Breakout frames) without and with prioritisation "
        "(`PrioritizedFrameStackReplayBuffer`: stratified draw from the sum tree, importance "
        "weights in the loss, |TD error| written back after each step)."
    )
    figures = {"ratio": ratio.median, "goal_met": ratio.median <= GOALS["ratio"]}
    report.section("1. Breakout train step", table, [note], result, figures)


def sample_1m(report: Report, samples: int, repeats: int) -> None:
    rng, strata = np.random.default_rng(0), np.arange(BATCH_SIZE)
    priorities, td_errors = rng.uniform(0.01, 10.0, BIG), rng.uniform(0.01, 10.0, BATCH_SIZE)

    def tree() -> SumTree:
        (built := SumTree(BIG)).update(np.arange(BIG), priorities**0.6)
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

    def rounds(step: Callable[..., object]) -> Callable[..., float]:
        return timed(lambda built: [step(built) for _ in range(samples)], samples)

    whole = rounds(lambda b: b.update_priorities(b.sample(BATCH_SIZE).indices, td_errors))
    sides = [
        Side(TREE, tree, rounds(tree_part)),
        Side(WHOLE, lambda: buffer(PrioritizedReplayBuffer), whole),
        Side(SB3, lambda: buffer(ReplayBuffer), rounds(lambda b: b.sample(BATCH_SIZE))),
    ]
    result = run(sides, repeats)
    tree_us, levels = 1e6 * result.median(TREE), len(result.built[TREE].levels)
    note = (
        f"Sum tree under {GOALS['tree_us']:.0f} us: {cell(tree_us < GOALS['tree_us'])}. "
        f"{BIG:,} leaves in {levels} levels (fanout 32, top level searched at once); one "
        f"measurement is {samples} rounds. The buffers have CartPole's observation (so the tree, "
        "weights and bookkeeping dominate): the difference is what prioritisation adds per batch."
    )
    figures = {"tree_us": tree_us, "goal_met": tree_us < GOALS["tree_us"]}
    rows = ratio_rows(result, [TREE, WHOLE, SB3], SB3, "us", 1e6)
    heading = "2. Sample 32 at 1M transitions, and the priority update"
    report.section(heading, rows, [note], result, figures)


def memory(report: Report, lives: list[tuple], rows: int) -> None:
    big = PrioritizedFrameStackReplayBuffer(BIG, OBS_SPACE, ACTION_SPACE, device="cpu")
    stock = ReplayBuffer(1000, OBS_SPACE, ACTION_SPACE, device="cpu")
    figures = {"bytes": big.nbytes / BIG, "tree_bytes": big.tree.nbytes / BIG}
    figures["sb3_bytes"] = sum(getattr(stock, a).nbytes for a in SB3_ARRAYS) / stock.buffer_size
    del big, stock
    gc.collect()
    before, _ = rss(), filled(PrioritizedFrameStackReplayBuffer, rows, transitions(lives))
    figures["rss_bytes"] = (rss() - before) * 2**30 / rows  # with the filled buffer alive
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
        "",
        "What it does to learning, CartPole seeds 0-4 against uniform 1-step replay: "
        "[docs/reports/prioritized_cartpole.md](../reports/prioritized_cartpole.md).",
    ]
    report.section("3. Memory per transition", notes=notes, figures=figures)


def main() -> None:
    args = parser(__doc__, "prioritized_replay.md", repeats=31)
    args.add_argument("--quick", action="store_true", help="small fills and jobs, a smoke run")
    options = args.parse_args()
    torch.set_num_threads(1)  # two intra-op threads on a shared machine stall each other
    np.random.seed(0)  # noqa: NPY002 - the buffers draw from numpy's global stream, as SB3's
    steps, train_rows, rss_rows, samples = SIZES[options.quick]
    lives = replay_buffer.record_breakout(steps)
    report = Report("Prioritized replay: what it costs against uniform replay")
    train_step(report, lives, train_rows, options.repeats)
    sample_1m(report, samples, options.repeats)
    memory(report, lives, rss_rows)
    report.write(options.output)


if __name__ == "__main__":
    main()
