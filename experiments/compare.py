"""``python -m experiments.compare DIR...``: which algorithm is better, from finished runs.

Each DIR is a run dir (``outputs/DATE/TIME_.../``) or a sweep dir (``multirun/DATE/TIME/``,
one run dir per job), in any mix. A run counts when it has ``.hydra/config.yaml`` and an
``evaluations.csv`` whose last row reached ``total_timesteps``; any other dir is skipped with
one warning line. Runs are grouped by env (its name and ``make_kwargs``), then by ``algo.name``,
or by any other config key with ``--by KEY`` (``--by dqn.learning_rate`` for a learning-rate
sweep).

Writes to ``--out`` (default: the first DIR):

- ``comparison.md``: per env and algo, the number of runs and the final IQM and mean with 95 %
  stratified-bootstrap CIs, and the probability of improvement between each pair of algos, all
  computed by rliable. "Final" is the last row of each run's ``evaluations.csv``.
- ``learning_curves.png``: a panel per env, per algo the mean over runs with a pointwise 95 %
  bootstrap band. Runs evaluated at different steps are interpolated linearly onto the union of
  their evaluation steps, within the range that every run of the algo covers (no extrapolation).

Toy-text envs (FrozenLake) also get the optimal return, by value iteration on the env's own
transition model within its time limit, as a reference line in both.

Statistics follow Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (2021).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import gymnasium as gym
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rliable import library as rly
from rliable import metrics

from custom.tabular import value_iteration

CONFIG_FILE = Path(".hydra") / "config.yaml"
EVALUATIONS_FILE = "evaluations.csv"
STEPS = "timesteps"
#: Columns that are not per-evaluation numbers (``scores`` lists every game's score).
NON_METRICS = ("scores",)
DEFAULT_METRIC = "mean_reward"
#: rliable's own default is 50,000. Measured on the 2-core development machine (8 runs per algo):
#: 2,000 take about 2 s per algo's IQM/mean CIs and 8 s per pair's P(X > Y) (50,000: 43 s and
#: 81 s), and the CI bounds moved by about 1 % of the CI's width between bootstrap seeds.
DEFAULT_REPS = 2000
#: Runs are compared by their algorithm unless ``--by`` names another config key.
DEFAULT_BY = "algo.name"
CONFIDENCE = 0.95
TABLE_NAME = "comparison.md"
PLOT_NAME = "learning_curves.png"


class CompareError(Exception):
    """A problem with the command line or the inputs; the message is one line for the user."""


class NotARun(Exception):
    """A dir that is not a finished run; the message says why, in a few words."""


@dataclass(frozen=True, eq=False)
class Run:
    """One finished run: what was trained, and its evaluations table.

    :param path: the run dir.
    :param env: the group label: the env's name, plus its ``make_kwargs`` when it has any.
    :param env_id: the gymnasium id, to rebuild the env for a reference value.
    :param make_kwargs: the env's ``gym.make`` keyword arguments.
    :param algo: the label the runs are compared by: ``algo.name``, or ``KEY=value`` for
        ``--by KEY``.
    :param seed: the run's seed.
    :param evaluations: ``evaluations.csv`` in file order; columns by name, extra ones kept.
    """

    path: Path
    env: str
    env_id: str
    make_kwargs: dict[str, Any]
    algo: str
    seed: int
    evaluations: pd.DataFrame

    def metrics(self) -> list[str]:
        """Numeric columns that a comparison can use (not the steps, not the score lists)."""
        numeric = self.evaluations.select_dtypes("number").columns
        return [name for name in numeric if name != STEPS and name not in NON_METRICS]

    def final(self, metric: str) -> float:
        """``metric`` at the last evaluation row: the run's final result."""
        return float(self.evaluations[metric].iloc[-1])

    def final_steps(self) -> int:
        """Env steps at the last evaluation row."""
        return int(self.evaluations[STEPS].iloc[-1])

    def curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Steps (increasing, unique) and ``metric`` there, for plotting.

        Where one step was evaluated twice (the final, longer evaluation at the last periodic
        one's step), the later row wins, as it does for :meth:`final`.
        """
        table = self.evaluations.drop_duplicates(STEPS, keep="last").sort_values(STEPS)
        return table[STEPS].to_numpy(float), table[metric].to_numpy(float)


def env_label(env_cfg: DictConfig) -> str:
    """``frozenlake (is_slippery=True, map_name=4x4)``: one group per distinct env set-up.

    Keys are sorted so that the same set-up groups together whatever order a config lists them.
    """
    kwargs = env_cfg.get("make_kwargs") or {}
    if not kwargs:
        return str(env_cfg.name)
    return f"{env_cfg.name} ({', '.join(f'{k}={kwargs[k]}' for k in sorted(kwargs))})"


def load_config(run_dir: Path) -> DictConfig:
    """The run's composed config, with the keys a comparison needs checked."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise NotARun(f"no {CONFIG_FILE}")
    try:
        cfg = OmegaConf.load(path)
        assert isinstance(cfg, DictConfig)
        for key in ("env.name", "env.id", "algo.name", "seed", "total_timesteps"):
            if OmegaConf.select(cfg, key) is None:
                raise NotARun(f"{CONFIG_FILE} has no {key}")
    except (OmegaConfBaseException, AssertionError) as error:
        raise NotARun(f"unreadable {CONFIG_FILE} ({type(error).__name__})") from error
    return cfg


def load_evaluations(run_dir: Path, total_timesteps: int) -> pd.DataFrame:
    """``evaluations.csv``, refused unless its last row is the end-of-training evaluation."""
    path = run_dir / EVALUATIONS_FILE
    if not path.is_file():
        raise NotARun(f"no {EVALUATIONS_FILE}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise NotARun(f"unreadable {EVALUATIONS_FILE} ({type(error).__name__})") from error
    if table.empty:
        raise NotARun(f"{EVALUATIONS_FILE} has no evaluation yet")
    if STEPS not in table.columns or not pd.api.types.is_numeric_dtype(table[STEPS]):
        raise NotARun(f"{EVALUATIONS_FILE} has no numeric {STEPS} column")
    last = int(table[STEPS].iloc[-1])
    if last < total_timesteps:
        raise NotARun(f"unfinished: last evaluation at {last} of {total_timesteps} steps")
    return table


def run_label(cfg: DictConfig, by: str) -> str:
    """What a run is compared by: its algo's name, or ``KEY=value`` for any other config key.

    ``--by dqn.learning_rate`` compares the runs of a learning-rate sweep; a run without the
    key is labelled ``KEY=None``.
    """
    if by == DEFAULT_BY:
        return str(cfg.algo.name)
    return f"{by}={OmegaConf.select(cfg, by, default=None)}"


def load_run(run_dir: Path, by: str = DEFAULT_BY) -> Run:
    """A finished run from its dir, labelled by the config key ``by``.

    :raises NotARun: when the dir lacks a readable config or a finished evaluations table.
    """
    cfg = load_config(run_dir)
    evaluations = load_evaluations(run_dir, int(cfg.total_timesteps))
    kwargs = OmegaConf.to_container(cfg.env.get("make_kwargs", OmegaConf.create()), resolve=True)
    return Run(
        path=run_dir,
        env=env_label(cfg.env),
        env_id=str(cfg.env.id),
        make_kwargs=dict(kwargs),  # type: ignore[arg-type]
        algo=run_label(cfg, by),
        seed=int(cfg.seed),
        evaluations=evaluations,
    )


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def candidate_dirs(input_dir: Path) -> list[Path]:
    """The input itself when it is a run dir, else its (non-hidden) subdirs: a sweep's jobs."""
    if (input_dir / CONFIG_FILE).is_file():
        return [input_dir]
    return sorted(p for p in input_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_runs(inputs: Sequence[Path], by: str = DEFAULT_BY) -> list[Run]:
    """Every finished run under ``inputs``, each once; a warning for each dir that is not one.

    :raises CompareError: for an input that is not a dir or that holds no finished run.
    """
    runs: dict[Path, Run] = {}
    for input_dir in inputs:
        if not input_dir.is_dir():
            raise CompareError(f"{input_dir} is not a directory")
        found = 0
        for candidate in candidate_dirs(input_dir):
            try:
                run = load_run(candidate, by)
            except NotARun as reason:
                warn(f"skipped {candidate}: {reason}")
                continue
            runs.setdefault(candidate.resolve(), run)
            found += 1
        if not found:
            raise CompareError(
                f"{input_dir} holds no finished run (a run dir has {CONFIG_FILE} and a "
                f"complete {EVALUATIONS_FILE}; a sweep dir has run dirs inside)"
            )
    return list(runs.values())


def with_metric(runs: Sequence[Run], metric: str) -> list[Run]:
    """The runs that have ``metric``; others are skipped with a warning.

    :raises CompareError: when no run has it, naming the metrics that exist.
    """
    kept = [run for run in runs if metric in run.metrics()]
    missing = [run for run in runs if metric not in run.metrics()]
    if not kept:
        known = sorted({name for run in runs for name in run.metrics()})
        raise CompareError(
            f"--metric {metric} is not a numeric column of {EVALUATIONS_FILE}: "
            f"use one of {', '.join(known)}"
        )
    for run in missing:
        warn(f"skipped {run.path}: its {EVALUATIONS_FILE} has no column {metric}")
    return kept


def group_runs(runs: Sequence[Run]) -> dict[str, dict[str, list[Run]]]:
    """env label -> algo -> runs (sorted by seed), envs and algos in name order."""
    groups: dict[str, dict[str, list[Run]]] = {}
    for run in sorted(runs, key=lambda r: (r.env, r.algo, r.seed, str(r.path))):
        groups.setdefault(run.env, {}).setdefault(run.algo, []).append(run)
    return groups


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval."""

    point: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.point:.4g} [{self.low:.4g}, {self.high:.4g}]"


@contextlib.contextmanager
def seeded_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the block, then put its state back.

    rliable's bootstrap draws its resampling indices from ``np.random`` itself (its
    ``random_state`` argument does not reach them), so this is what makes the CIs repeatable.
    """
    # The legacy global generator on purpose: it is the one rliable draws from.
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def bootstrap(
    data: Mapping[str, np.ndarray | list[np.ndarray]],
    func: Callable[..., np.ndarray],
    reps: int,
    seed: int,
) -> dict[str, list[Estimate]]:
    """rliable's stratified-bootstrap percentile CIs of ``func`` for each entry of ``data``.

    :param data: name -> scores of shape (runs, tasks), or a list of such arrays (resampled
        independently) for a statistic of several algorithms.
    :param func: the statistic; returns a 1-D array, one estimate per element.
    :param reps: bootstrap replications.
    :param seed: seed of the resampling.
    """
    with seeded_numpy(seed):
        points, intervals = rly.get_interval_estimates(
            data, func, reps=reps, confidence_interval_size=CONFIDENCE
        )
    return {
        name: [
            Estimate(float(p), float(lo), float(hi))
            for p, lo, hi in zip(
                np.atleast_1d(points[name]), intervals[name][0], intervals[name][1], strict=True
            )
        ]
        for name in data
    }


def final_scores(runs: Sequence[Run], metric: str) -> np.ndarray:
    """Final ``metric`` of each run as rliable's (runs, tasks) matrix, one env = one task."""
    return np.array([[run.final(metric)] for run in runs])


def iqm_and_mean(x: np.ndarray) -> np.ndarray:
    """rliable's IQM and mean of a (runs, tasks) score matrix."""
    return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])


def improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """rliable's P(X > Y): the chance that a random run of X ends above one of Y, ties half."""
    return np.array([metrics.probability_of_improvement(x, y)])


@dataclass(frozen=True)
class EnvComparison:
    """Everything that the table says about one env."""

    env: str
    runs: dict[str, list[Run]]
    iqm: dict[str, Estimate]
    mean: dict[str, Estimate]
    improvement: dict[tuple[str, str], Estimate]
    optimum: float | None


def compare_env(
    env: str, runs: dict[str, list[Run]], metric: str, reps: int, seed: int
) -> EnvComparison:
    """Final IQM and mean per algo and P(X > Y) per pair of algos, with bootstrap CIs."""
    scores = {algo: final_scores(algo_runs, metric) for algo, algo_runs in runs.items()}
    estimates = bootstrap(scores, iqm_and_mean, reps, seed)
    pairs = list(itertools.combinations(runs, 2))
    pair_data: dict[str, np.ndarray | list[np.ndarray]] = {
        f"{x} > {y}": [scores[x], scores[y]] for x, y in pairs
    }
    pair_estimates = bootstrap(pair_data, improvement, reps, seed) if pairs else {}
    # The optimum is a return: a reference for mean_reward only. All runs share the env set-up.
    first = next(iter(runs.values()))[0]
    optimum = optimal_return(first.env_id, first.make_kwargs) if metric == DEFAULT_METRIC else None
    return EnvComparison(
        env=env,
        runs=runs,
        iqm={algo: estimates[algo][0] for algo in runs},
        mean={algo: estimates[algo][1] for algo in runs},
        improvement={(x, y): pair_estimates[f"{x} > {y}"][0] for x, y in pairs},
        optimum=optimum,
    )


def optimal_return(env_id: str, make_kwargs: Mapping[str, Any]) -> float | None:
    """Best expected return within the env's time limit, for toy-text envs (FrozenLake); else None.

    Value iteration on the env's own transition model (``unwrapped.P``), undiscounted, over as
    many steps as its ``TimeLimit`` allows, since evaluation games are cut there too: on 4x4
    slippery FrozenLake, 0.744 success (0.824 with no step limit). Other envs have no model.
    """
    try:
        entry_point = str(gym.spec(env_id).entry_point)
    except gym.error.Error:  # not registered here (ALE ids need ale_py): no model either
        return None
    if "toy_text" not in entry_point:
        return None
    env = gym.make(env_id, **make_kwargs)
    env.close()  # only its model and time limit are read, never stepped
    unwrapped: Any = env.unwrapped
    start = getattr(unwrapped, "initial_state_distrib", None)
    if not hasattr(unwrapped, "P") or start is None:
        return None
    horizon = env.spec.max_episode_steps if env.spec is not None else None
    values, _ = value_iteration(
        unwrapped.P,
        int(unwrapped.observation_space.n),
        int(unwrapped.action_space.n),
        gamma=1.0,
        horizon=horizon,
    )
    return float(np.dot(start, values))


def common_grid(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Every evaluation step of any curve inside the range that all curves cover."""
    start = max(steps[0] for steps, _ in curves)
    stop = min(steps[-1] for steps, _ in curves)
    grid = np.unique(np.concatenate([steps for steps, _ in curves]))
    return grid[(grid >= start) & (grid <= stop)]


def on_grid(curves: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """The curves interpolated linearly onto ``grid``: a (runs, len(grid)) matrix."""
    return np.array([np.interp(grid, steps, values) for steps, values in curves])


def pointwise_mean(x: np.ndarray) -> np.ndarray:
    """Mean over runs at each step of a (runs, steps) matrix."""
    return np.mean(x, axis=0)


def mean_curve(
    runs: Sequence[Run], metric: str, reps: int, seed: int
) -> tuple[np.ndarray, list[Estimate]] | None:
    """Steps and, at each, the mean over runs with a 95 % bootstrap CI; None if no common range.

    Each step is bootstrapped as its own stratum (rliable treats columns as tasks), so the band
    is pointwise.
    """
    curves = [run.curve(metric) for run in runs]
    grid = common_grid(curves)
    if grid.size == 0:
        return None
    return grid, bootstrap({"curve": on_grid(curves, grid)}, pointwise_mean, reps, seed)["curve"]


def learning_curves_figure(
    groups: Mapping[str, Mapping[str, list[Run]]],
    optima: Mapping[str, float | None],
    metric: str,
    reps: int,
    seed: int,
) -> Figure:
    """A panel per env; per algo the mean over runs with its 95 % band, and the optimum if known."""
    fig = Figure(figsize=(6.4 * len(groups), 4.4), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (env, runs) in zip(axes, groups.items(), strict=True):
        for algo, algo_runs in runs.items():
            curve = mean_curve(algo_runs, metric, reps, seed)
            if curve is None:
                warn(f"{env}, {algo}: its runs share no range of steps; no curve drawn")
                continue
            steps, estimates = curve
            label = f"{algo} ({len(algo_runs)} run{'s' if len(algo_runs) > 1 else ''})"
            (line,) = ax.plot(steps, [e.point for e in estimates], marker="o", ms=3, label=label)
            low, high = [e.low for e in estimates], [e.high for e in estimates]
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        if (optimum := optima.get(env)) is not None:
            ax.axhline(
                optimum,
                color="black",
                ls="--",
                lw=1,
                label=f"optimum (value iteration) {optimum:.3g}",
            )
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"{metric} (evaluation)")
        ax.grid(alpha=0.3)
        # Below the panel: inside, it can hide curves or the optimum, which often sits at the top.
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncol=2,
            fontsize="small",
            frameon=False,
            title=f"mean over runs; shaded: {CONFIDENCE:.0%} bootstrap CI",
        )
    return fig


def reading(estimate: Estimate, x: str, y: str) -> str:
    """Plain words for P(X > Y): a winner only when the whole CI is on one side of 0.5."""
    if estimate.low > 0.5:
        return f"{x} better"
    if estimate.high < 0.5:
        return f"{y} better"
    return "no clear difference (CI contains 0.5)"


def env_section(result: EnvComparison, metric: str) -> list[str]:
    """The markdown of one env: the algo table, P(X > Y) per pair, and the runs."""
    lines = [
        f"## {result.env}",
        "",
        "| algo | runs | final at steps | IQM [95% CI] | mean [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for algo, runs in result.runs.items():
        steps = sorted({run.final_steps() for run in runs})
        at = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"
        lines.append(f"| {algo} | {len(runs)} | {at} | {result.iqm[algo]} | {result.mean[algo]} |")
    if result.optimum is not None:
        lines.append(
            f"| optimum (value iteration, within the time limit) | | | "
            f"{result.optimum:.4g} | {result.optimum:.4g} |"
        )
    if result.improvement:
        lines += ["", "| X | Y | P(X > Y) [95% CI] | reading |", "|---|---|---|---|"]
        for (x, y), estimate in result.improvement.items():
            lines.append(f"| {x} | {y} | {estimate} | {reading(estimate, x, y)} |")
    lines += ["", f"| algo | seed | final {metric} | run dir |", "|---|---|---|---|"]
    for algo, runs in result.runs.items():
        lines += [f"| {algo} | {run.seed} | {run.final(metric):.4g} | {run.path} |" for run in runs]
    return [*lines, ""]


def comparison_markdown(
    results: Sequence[EnvComparison], metric: str, inputs: Sequence[Path], reps: int, seed: int
) -> str:
    """The whole ``comparison.md``: how it was computed, then a section per env."""
    header = [
        "# Which algorithm is better: final evaluations",
        "",
        f"- inputs: {', '.join(str(p) for p in inputs)}",
        f"- final = `{metric}` in the last row of each run's `{EVALUATIONS_FILE}`",
        "- IQM = mean of the middle 50 % of runs; P(X > Y) = chance that a random run of X ends "
        "above a random run of Y (ties count half; 0.5 = no difference)",
        f"- all by rliable: {CONFIDENCE:.0%} stratified-bootstrap percentile CIs, {reps} "
        f"replications, seed {seed}",
        f"- learning curves: [{PLOT_NAME}]({PLOT_NAME})",
        "",
    ]
    body = [line for result in results for line in env_section(result, metric)]
    return "\n".join(header + body)


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one ``error:`` line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        raise CompareError(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; ``--reps`` lower in tests keeps them quick."""
    parser = _OneLineParser(
        prog="python -m experiments.compare",
        description="Compare finished runs: learning_curves.png and comparison.md (rliable).",
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="run or sweep dirs")
    parser.add_argument(
        "--metric",
        default=DEFAULT_METRIC,
        help=f"numeric column of {EVALUATIONS_FILE} to compare (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="output dir (default: the first DIR)")
    parser.add_argument(
        "--reps", type=int, default=DEFAULT_REPS, help="bootstrap replications (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (%(default)s)")
    parser.add_argument(
        "--by",
        default=DEFAULT_BY,
        metavar="KEY",
        help="config key to compare by, e.g. dqn.learning_rate (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.reps < 1:
        raise CompareError(f"--reps must be >= 1, got {args.reps}")
    return args


def compare(
    inputs: Sequence[Path],
    out: Path,
    metric: str = DEFAULT_METRIC,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    by: str = DEFAULT_BY,
) -> list[EnvComparison]:
    """Read the runs under ``inputs``, write the table and the plot into ``out``.

    :param by: the config key whose value tells the compared groups apart (default: the algo).
    :raises CompareError: for inputs without runs or an unknown metric.
    """
    runs = with_metric(find_runs(inputs, by), metric)
    groups = group_runs(runs)
    results = [compare_env(env, algos, metric, reps, seed) for env, algos in groups.items()]
    if out.exists() and not out.is_dir():
        raise CompareError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    (out / TABLE_NAME).write_text(comparison_markdown(results, metric, inputs, reps, seed))
    optima = {result.env: result.optimum for result in results}
    learning_curves_figure(groups, optima, metric, reps, seed).savefig(out / PLOT_NAME, dpi=110)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 on success, 1 with one ``error:`` line on stderr otherwise."""
    try:
        args = parse_args(argv)
        out = args.out if args.out is not None else args.dirs[0]
        compare(args.dirs, out, args.metric, args.reps, args.seed, args.by)
    except CompareError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out / TABLE_NAME} and {out / PLOT_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
