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
``python -m benchmarks.fast_vs_stock --stock SEED RUN_DIR [OVERRIDE ...]`` trains one stock run
and writes its run dir through ``RunDir`` (config, status, model), so compare counts it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.harness import Report, parser, table
from benchmarks.stock import stock_model
from experiments.compare import PLOT_NAME, TABLE_NAME, EnvComparison, Estimate, compare
from experiments.config import compose_config
from experiments.envs import make_env
from experiments.run_dir import RunDir
from experiments.train import periodic_evaluation

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("env=cartpole", "algo=dqn")
#: ``algo.name`` of the stock runs in their saved config: what the comparison groups them by.
STOCK_LABEL = "dqn_stock_sb3"
FAST_LABEL = "dqn"


def train_stock(seed: int, run_dir: Path, extra: list[str]) -> None:
    """One stock SB3 run with run.py's config for ``seed``; a run dir that compare reads."""
    cfg = compose_config([*SHARED, *extra, f"seed={seed}", "progress_bar=false"])
    cfg.algo.name = STOCK_LABEL
    run = RunDir(run_dir)
    run.write_config(cfg)
    run.write_status("running", 0, cfg.total_timesteps)
    model = stock_model(cfg)
    eval_env = make_env(cfg, training=False)
    model.learn(cfg.total_timesteps, callback=periodic_evaluation(cfg, eval_env, run_dir))
    eval_env.close()
    model.save(run.model_path)
    run.write_status("finished", model.num_timesteps, cfg.total_timesteps)


def run(argv: list[str]) -> None:
    """A child process with its output passed through; raise on failure."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    subprocess.run(argv, cwd=ROOT, env=env, check=True)


def train_both(seeds: list[int], jobs: int, runs: Path, extra: list[str]) -> None:
    """The fast runs as one run.py sweep, then the stock runs, ``jobs`` at a time."""
    seed_list = ",".join(map(str, seeds))
    run(
        [
            sys.executable,
            "run.py",
            "-m",
            *SHARED,
            *extra,
            f"seed={seed_list}",
            "logger=none",
            "progress_bar=false",
            "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={jobs}",
            f"hydra.sweep.dir={runs / 'fast'}",
        ]
    )
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


def finals(runs: Path) -> dict[str, dict[int, float | None]]:
    """Final evaluation mean of every run: ``{label: {seed: score}}``."""
    out: dict[str, dict[int, float | None]] = {}
    for run in (RunDir(path) for path in sorted(runs.glob("*/*"))):
        if not run.has_config():
            continue
        cfg = run.config()
        out.setdefault(str(cfg.algo.name), {})[int(cfg.seed)] = run.final_mean()
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


def main() -> None:
    args = parser(__doc__, "fast_vs_stock/README.md")
    args.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args.add_argument("--jobs", type=int, default=2, help="runs at a time")
    args.add_argument("--runs", type=Path, help="where the run dirs go (default: a temp dir)")
    args.add_argument("--set", nargs="+", default=[], help="run.py overrides for both sides")
    args.add_argument("--stock", nargs="+", help=argparse.SUPPRESS)
    options = args.parse_args()
    if options.stock is not None:
        seed, run_dir, *extra = options.stock
        return train_stock(int(seed), Path(run_dir), extra)
    report = Report("Fast loop vs stock SB3: CartPole learning curves over seeds")
    with tempfile.TemporaryDirectory(prefix="fast_vs_stock_") as temporary:
        runs = (options.runs or Path(temporary)).resolve()
        train_both(options.seeds, options.jobs, runs, options.set)
        (result,) = compare([runs / "fast", runs / "stock"], options.output.parent)
        scores = finals(runs)
    same, reasons = verdict(result)
    rows = [
        [seed, scores[FAST_LABEL].get(seed), scores[STOCK_LABEL].get(seed)]
        for seed in options.seeds
    ]
    report.section(
        f"fast: `python run.py {' '.join([*SHARED, *options.set])} seed=S`; stock: SB3's DQN, "
        "Adam and predict with the same config values and evaluation (benchmarks/stock.py)",
        [
            *table(["seed", "fast final", "stock final"], rows),
            "",
            f"Same curve within noise: **{'yes' if same else 'no'}**",
            *reasons,
            "",
            f"rliable's table: [{TABLE_NAME}]({TABLE_NAME}); curves: [{PLOT_NAME}]({PLOT_NAME}).",
        ],
        figures={"same": same, "finals": scores},
    )
    report.write(options.output)


if __name__ == "__main__":
    main()
