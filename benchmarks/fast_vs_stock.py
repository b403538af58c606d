"""Did the speed-ups change learning? Our fast loop vs stock SB3 on CartPole, seed for seed.

    python -m benchmarks.fast_vs_stock [--seeds 0 1 2 3 4] [--jobs 2] [--runs DIR] [--out DIR]
        [--set KEY=VALUE ...]

Fast: ``python run.py env=cartpole algo=dqn seed=S`` as it is (TargetDQN, fused Adam, the
lean acting path; channels-last changes nothing without convolutions), one job per seed on
Hydra's joblib launcher. Stock: SB3's own ``DQN`` with SB3's Adam and SB3's ``predict``
(benchmarks/stock.py), the same hyperparameters, seed, torch threads and training env, and the
same evaluation as run.py (``PeriodicEvaluation`` on run.py's evaluation env, every
``eval.freq`` steps). Both learn from the same initial weights and the same first batches;
they part once float rounding (fused vs per-tensor Adam) makes one action differ, so the
question is whether their curves agree *within seed-to-seed noise*.

Both sides' run dirs go to ``--runs`` (default: a temporary dir); ``experiments.compare``
then writes ``comparison.md`` (final IQM and mean with 95 % bootstrap CIs, P(fast > stock))
and ``learning_curves.png`` into ``--out``, and this script adds ``README.md``: the command,
every seed's final score and the verdict (the P(fast > stock) CI contains 0.5 and the final
IQM CIs overlap).

``--set`` adds run.py overrides to both sides (``--set total_timesteps=5000`` for a quick look).
``python -m benchmarks.fast_vs_stock --stock SEED RUN_DIR [OVERRIDE ...]`` trains one stock run.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import stable_baselines3
import torch
from omegaconf import OmegaConf

from benchmarks.breakout_throughput import command_args
from benchmarks.machine import cpu_name, write_report
from benchmarks.stock import stock_model
from experiments.compare import PLOT_NAME, TABLE_NAME, EnvComparison, Estimate, compare
from experiments.config import compose_config
from experiments.envs import make_env
from experiments.train import periodic_evaluation

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "benchmarks" / "fast_vs_stock"
SHARED = ("env=cartpole", "algo=dqn")
#: ``algo.name`` of the stock runs in their saved config: what the comparison groups them by.
STOCK_LABEL = "dqn_stock_sb3"
FAST_LABEL = "dqn"


def train_stock(seed: int, run_dir: Path, extra: list[str]) -> None:
    """One stock SB3 run with run.py's config for ``seed``; a run dir that compare reads."""
    cfg = compose_config([*SHARED, *extra, f"seed={seed}", "progress_bar=false"])
    model = stock_model(cfg)
    eval_env = make_env(cfg, training=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.learn(cfg.total_timesteps, callback=periodic_evaluation(cfg, eval_env, run_dir))
    eval_env.close()
    cfg.algo.name = STOCK_LABEL
    (run_dir / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml", resolve=True)


def run(argv: list[str]) -> None:
    """A child process with its output passed through; raise on failure."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    subprocess.run(argv, cwd=ROOT, env=env, check=True)


def train_both(seeds: list[int], jobs: int, runs: Path, extra: list[str]) -> None:
    """The fast runs as one run.py sweep, then the stock runs, ``jobs`` at a time."""
    seed_list = ",".join(map(str, seeds))
    run([sys.executable, "run.py", "-m", *SHARED, *extra, f"seed={seed_list}", "logger=none",
         "progress_bar=false", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}",
         f"hydra.sweep.dir={runs / 'fast'}"])  # fmt: skip
    module = "benchmarks.fast_vs_stock"
    commands = [
        [
            sys.executable,
            "-m",
            module,
            "--stock",
            str(seed),
            str(runs / "stock" / f"seed{seed}"),
            *extra,
        ]
        for seed in seeds
    ]
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(run, commands))


def finals(runs: Path) -> dict[str, dict[int, float]]:
    """Final evaluation mean of every run: ``{label: {seed: score}}``."""
    out: dict[str, dict[int, float]] = {}
    for config in sorted(runs.glob("*/*/.hydra/config.yaml")):
        cfg = OmegaConf.load(config)
        with (config.parent.parent / "evaluations.csv").open() as file:
            last = list(csv.DictReader(file))[-1]
        out.setdefault(str(cfg.algo.name), {})[int(cfg.seed)] = float(last["mean_reward"])
    return out


def verdict(result: EnvComparison) -> tuple[bool, list[str]]:
    """Within noise: P(fast > stock)'s CI holds 0.5 and the final IQM CIs overlap."""
    fast, stock = result.iqm[FAST_LABEL], result.iqm[STOCK_LABEL]
    pairs = result.improvement
    p = pairs.get((FAST_LABEL, STOCK_LABEL))
    if p is None:  # the pair is stored in the other order: P(stock > fast) = 1 - P(fast > stock)
        q = pairs[(STOCK_LABEL, FAST_LABEL)]
        p = Estimate(1 - q.point, 1 - q.high, 1 - q.low)
    overlap = fast.low <= stock.high and stock.low <= fast.high
    holds = p.low <= 0.5 <= p.high
    lines = [
        f"- P(fast > stock) = {p}: {'contains' if holds else 'excludes'} 0.5",
        f"- final IQM: fast {fast}, stock {stock}: {'overlap' if overlap else 'disjoint'}",
    ]
    return holds and overlap, lines


def report(args: argparse.Namespace, runs: Path, result: EnvComparison, load: float) -> list[str]:
    """README.md: command, conditions, every seed's final score, the verdict."""
    scores = finals(runs)
    same, reasons = verdict(result)
    lines = [
        "# Fast loop vs stock SB3: CartPole learning curves over seeds",
        "",
        f"Command: `python -m benchmarks.fast_vs_stock{command_args()}`",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {cpu_name()}, "
        f"{os.cpu_count()} logical cores; 1-min load average at start: {load:.2f}",
        f"- python {platform.python_version()}, torch {torch.__version__}, "
        f"stable-baselines3 {stable_baselines3.__version__}",
        f"- fast (`{FAST_LABEL}`): `python run.py {' '.join([*SHARED, *args.set])} seed=S`; stock "
        f"(`{STOCK_LABEL}`): SB3's DQN, SB3's Adam and predict, the same config values and "
        "evaluation (benchmarks/stock.py)",
        "",
        "| seed | fast final | stock final |",
        "|---:|---:|---:|",
    ]
    for seed in args.seeds:
        fast, stock = scores[FAST_LABEL][seed], scores[STOCK_LABEL][seed]
        lines.append(f"| {seed} | {fast:.1f} | {stock:.1f} |")
    lines += [
        "",
        f"Same curve within noise: **{'yes' if same else 'no'}**",
        *reasons,
        "",
        f"rliable's table: [{TABLE_NAME}]({TABLE_NAME}); curves (mean over seeds, 95 % "
        f"bootstrap band): [{PLOT_NAME}]({PLOT_NAME}).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--runs", type=Path, help="where the run dirs go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="run.py overrides for both sides")  # fmt: skip
    parser.add_argument("--stock", nargs="+", metavar="SEED RUN_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stock is not None:
        seed, run_dir, *extra = args.stock
        train_stock(int(seed), Path(run_dir), extra)
        return
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fast_vs_stock_") as temporary:
        runs = (args.runs or Path(temporary)).resolve()
        train_both(args.seeds, args.jobs, runs, args.set)
        (result,) = compare([runs / "fast", runs / "stock"], args.out)
        lines = report(args, runs, result, load)
    print("\n".join(lines))
    write_report(args.out / "README.md", lines, started)


if __name__ == "__main__":
    main()
