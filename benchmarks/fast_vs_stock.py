"""Did the speed-ups change learning? Our fast loop vs stock SB3 on CartPole, seed for seed.

Sides: ``python run.py env=cartpole algo=dqn seed=S``; SB3's own DQN (benchmarks/stock.py) with
the same config and evaluation. The verdict, by experiments.compare: see :func:`verdict`.
"""

import argparse
import functools
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.harness import Report, parser
from benchmarks.stock import stock_model
from experiments.compare import PLOT_NAME, TABLE_NAME, EnvComparison, Estimate, compare
from experiments.config import compose_config
from experiments.envs import make_env
from experiments.run_dir import RunDir
from experiments.train import periodic_evaluation

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
run = functools.partial(subprocess.run, cwd=ROOT, env=ENV, check=True)  # output passed through
SHARED = ("env=cartpole", "algo=dqn")
STOCK_LABEL, FAST_LABEL = "dqn_stock_sb3", "dqn"  # algo.name in the configs: compare groups by it


def train_stock(seed: int, run_dir: Path, extra: list[str]) -> None:
    """One stock SB3 run with run.py's config for ``seed``; a run dir that compare reads."""
    cfg = compose_config([*SHARED, *extra, f"seed={seed}", "progress_bar=false"])
    model, eval_env = stock_model(cfg), make_env(cfg, training=False)
    cfg.algo.name = STOCK_LABEL  # after building: stock_model resolves the config by algo name
    run = RunDir(run_dir)
    run.write_config(cfg)
    run.write_status("running", 0, cfg.total_timesteps)
    model.learn(cfg.total_timesteps, callback=periodic_evaluation(cfg, eval_env, run_dir))
    model.save(run.model_path)
    run.write_status("finished", model.num_timesteps, cfg.total_timesteps)


def train_both(seeds: list[int], jobs: int, runs: Path, extra: list[str]) -> None:
    """The fast runs as one run.py sweep, then the stock runs, ``jobs`` at a time."""
    sweep = f"seed={','.join(map(str, seeds))} logger=none progress_bar=false"
    sweep += f" hydra/launcher=joblib hydra.launcher.n_jobs={jobs} hydra.sweep.dir={runs / 'fast'}"
    run([sys.executable, "run.py", "-m", *SHARED, *extra, *sweep.split()])
    stock = [sys.executable, "-m", "benchmarks.fast_vs_stock", "--stock"]
    commands = [[*stock, str(seed), str(runs / "stock" / f"seed{seed}"), *extra] for seed in seeds]
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(run, commands))


def finals(runs: Path) -> dict[str, dict[int, float | None]]:
    """Final evaluation mean of every run: ``{label: {seed: score}}``."""
    out: dict[str, dict[int, float | None]] = {}
    for run in (RunDir(path) for path in sorted(runs.glob("*/*"))):
        if run.has_config():
            cfg = run.config()
            out.setdefault(str(cfg.algo.name), {})[int(cfg.seed)] = run.final_mean()
    return out


def verdict(result: EnvComparison) -> dict[str, object]:
    """Within noise: P(fast > stock)'s CI holds 0.5 and the final IQM CIs overlap."""
    fast, stock = result.iqm[FAST_LABEL], result.iqm[STOCK_LABEL]
    p = result.improvement.get((FAST_LABEL, STOCK_LABEL))
    if p is None:  # the pair is stored in the other order: P(stock > fast) = 1 - P(fast > stock)
        q = result.improvement[(STOCK_LABEL, FAST_LABEL)]
        p = Estimate(1 - q.point, 1 - q.high, 1 - q.low)
    holds, overlap = p.low <= 0.5 <= p.high, fast.low <= stock.high and stock.low <= fast.high
    keys = ("P(fast > stock)", "holds 0.5", "fast IQM", "stock IQM", "IQMs overlap", "same")
    return dict(zip(keys, (p, holds, fast, stock, overlap, holds and overlap), strict=True))


def main() -> None:
    args = parser(__doc__, "fast_vs_stock/README.md", seeds=[0, 1, 2, 3, 4], jobs=2, runs=None)
    args.add_argument("--set", nargs="+", default=[], help="run.py overrides for both sides")
    args.add_argument("--stock", nargs="+", help=argparse.SUPPRESS)
    options = args.parse_args()
    if options.stock is not None:
        seed, run_dir, *extra = options.stock
        return train_stock(int(seed), Path(run_dir), extra)
    report = Report("Fast loop vs stock SB3: CartPole learning curves over seeds")
    with tempfile.TemporaryDirectory(prefix="fast_vs_stock_") as temporary:
        runs = Path(options.runs or temporary).resolve()
        train_both(options.seeds, options.jobs, runs, options.set)
        (result,) = compare([runs / "fast", runs / "stock"], options.output.parent)
        scores = finals(runs)
    rows = [{"seed": s} | {f"{k} final": scores[k].get(s) for k in scores} for s in options.seeds]
    heading = f"fast: `python run.py {' '.join([*SHARED, *options.set])} seed=S`; stock: SB3's DQN"
    report.section("Verdict", [verdict(result)])
    report.section(heading, rows, [f"rliable: [{TABLE_NAME}]({TABLE_NAME}), ![]({PLOT_NAME})"])
    report.write(options.output)


if __name__ == "__main__":
    main()
