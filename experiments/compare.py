"""``python -m experiments.compare DIR...``: which algorithm is better, from finished runs.

Each DIR is a run dir (``outputs/DATE/TIME_.../``) or a sweep dir (``multirun/DATE/TIME/``,
one run dir per job), in any mix. Runs are read only through :class:`experiments.run_dir.RunDir`:
a run counts when its own record says it is finished (:meth:`RunDir.is_finished`: trained to
its budget, with model.zip); any other dir is skipped with one warning line that says why
(interrupted at step N of M, still running, failed, not a run).

What the comparison refuses to claim, and why:

- **Budgets apart.** The final score of a run trained 1,000 steps and one trained 50,000 are
  different quantities, so runs are compared within a section per env set-up *and* final
  evaluation step (``cartpole, 50,000 steps``), never pooled into one IQM or paired across
  sections; an env whose runs end at several steps gets one warning line. Within a section,
  curves evaluated on different step grids are interpolated onto their common range.
- **One run per seed.** Two runs of one seed in a group are one sample (training is
  deterministic given the seed), so a group keeps the first run of each seed in path order
  (for Hydra's dated dirs, the oldest) and a warning line names the dropped dirs. Dropping,
  not refusing: the rest of the comparison stays usable, and the warning says what was used.
- **No verdict below ``--min-runs``** (default 3, rliable's guidance; at least 2, since a
  bootstrap of one run resamples that run only and its CI has no width): P(X > Y) is still
  shown, but the reading says "too few runs for a verdict (n=1 vs 1; need 3 each)". n stands
  beside every figure: the tables' n columns and the plot's legend.
- **Groups are algorithms.** Runs are grouped by ``algo.name``; ``--by KEY`` splits each algo
  further by a config key (``dqn, dqn.learning_rate=0.01``), so that a key shared by two
  algorithms never pools them. A KEY that no run has is an error naming similar keys; runs
  without it are skipped with a warning.

Writes to ``--out`` (default: the first DIR), checked writable before any work:

- ``comparison.md``: per section and group, n and the final IQM and mean with 95 %
  stratified-bootstrap CIs, and the probability of improvement between each pair of groups,
  all computed by rliable. "Final" is the last row of each run's evaluations table.
- ``learning_curves.png``: a panel per section, per group the mean over runs with a pointwise
  95 % bootstrap band; the legend gives each group's n.

Progress lines (``compare: ...``) go to stderr when there are many dirs to read or much
bootstrapping to do, so that a user whose stdout is a file sees what is happening.

Toy-text envs (FrozenLake) also get the optimal return, by value iteration on the env's own
transition model within its time limit, as a reference line in both.

Statistics follow Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (2021).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import itertools
import math
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rliable import library as rly
from rliable import metrics

from custom.tabular import value_iteration
from experiments.errors import ConfigError, OneLineParser
from experiments.run_dir import (
    CONFIG,
    EVALUATIONS,
    HYDRA_CONFIG,
    MEAN_COLUMN,
    MODEL,
    SCORES_COLUMN,
    STEPS_COLUMN,
    NotARun,
    RunDir,
)

#: Columns that are not per-evaluation numbers (``scores`` lists every game's score).
NON_METRICS = (SCORES_COLUMN,)
DEFAULT_METRIC = MEAN_COLUMN
#: rliable's own default is 50,000; timings and CI stability of this choice are in
#: docs/reports/compare_example/README.md.
DEFAULT_REPS = 2000
#: More replications than this only cost memory and time: the CI bounds stop moving long before.
MAX_REPS = 1_000_000
#: rliable's guidance (Agarwal et al. 2021): fewer runs than this per group give no verdict.
DEFAULT_MIN_RUNS = 3
#: Runs are compared by their algorithm; ``--by`` adds another config key to the group.
DEFAULT_BY = "algo.name"
CONFIDENCE = 0.95
#: numpy's legacy seeding takes 0 .. 2**32 - 1 (rliable resamples with that generator).
MAX_SEED = 2**32 - 1
TABLE_NAME = "comparison.md"
PLOT_NAME = "learning_curves.png"
#: Legend labels longer than this (characters) go in one column below a panel, not two.
LEGEND_TWO_COLUMNS_MAX = 32
#: Progress lines when this many dirs are to be read...
PROGRESS_DIRS = 20
#: ... or when the bootstrap makes this many replications in all (reps x estimates).
PROGRESS_REPLICATIONS = 20_000
_ABSENT = object()


class CompareError(Exception):
    """A problem with the command line or the inputs; the message is one line for the user."""


class Skipped(ConfigError):
    """A run dir that the comparison cannot use (unfinished, unreadable, without ``--by``)."""


@dataclass(frozen=True, eq=False)
class Run:
    """One finished run: what was trained, and its evaluations table.

    :param path: the run dir.
    :param env: the env's name, plus its ``make_kwargs`` when it has any.
    :param env_id: the gymnasium id, to rebuild the env for a reference value.
    :param make_kwargs: the env's ``gym.make`` keyword arguments.
    :param algo: the group label: ``algo.name``, or ``algo.name, KEY=value`` for ``--by KEY``.
    :param seed: the run's seed.
    :param evaluations: the evaluations table in file order; columns by name, extra ones kept.
    :param config: the run's effective config, for ``--by``.
    """

    path: Path
    env: str
    env_id: str
    make_kwargs: dict[str, Any]
    algo: str
    seed: int
    evaluations: pd.DataFrame
    config: DictConfig

    def metrics(self) -> list[str]:
        """Numeric columns that a comparison can use (not the steps, not the score lists)."""
        numeric = self.evaluations.select_dtypes("number").columns
        return [name for name in numeric if name != STEPS_COLUMN and name not in NON_METRICS]

    def final(self, metric: str) -> float:
        """``metric`` at the last evaluation row: the run's final result."""
        return float(self.evaluations[metric].iloc[-1])

    def final_steps(self) -> int:
        """Env steps at the last evaluation row: where :meth:`final` was measured."""
        return int(self.evaluations[STEPS_COLUMN].iloc[-1])

    def curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Steps (increasing, unique) and ``metric`` there, for plotting.

        Where one step was evaluated twice (the final, longer evaluation at the last periodic
        one's step), the later row wins, as it does for :meth:`final`.
        """
        table = self.evaluations.drop_duplicates(STEPS_COLUMN, keep="last")
        table = table.sort_values(STEPS_COLUMN)
        return table[STEPS_COLUMN].to_numpy(float), table[metric].to_numpy(float)


@dataclass(frozen=True, order=True)
class Section:
    """What runs must share to be compared: the env set-up and the step of the final score."""

    env: str
    steps: int

    def __str__(self) -> str:
        return f"{self.env}, {self.steps:,} steps"


def env_label(env_cfg: DictConfig) -> str:
    """``frozenlake (is_slippery=True, map_name=4x4)``: one group per distinct env set-up.

    Keys are sorted so that the same set-up groups together whatever order a config lists them.
    """
    kwargs = env_cfg.get("make_kwargs") or {}
    if not kwargs:
        return str(env_cfg.name)
    return f"{env_cfg.name} ({', '.join(f'{k}={kwargs[k]}' for k in sorted(kwargs))})"


def integer(run_dir: RunDir, cfg: DictConfig, key: str) -> int:
    """The config's ``key`` as an int (a hand-edited config can hold anything)."""
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Skipped(str(run_dir.path), f"its {key} is not an integer: {value!r}")
    return value


def unfinished_reason(run_dir: RunDir, total_timesteps: int) -> str:
    """Why :meth:`RunDir.is_finished` says no, in the words of the run's own status."""
    status = run_dir.status()
    if status is None:  # a run from before status.json: its evaluations tell how far it got
        if not run_dir.model_path.is_file():
            return f"unfinished: no {MODEL} (training did not end)"
        rows = run_dir.evaluations()
        last = f"last evaluation at {rows[-1].timesteps:,}" if rows else "no evaluation"
        return f"unfinished: {last} of {total_timesteps:,} steps"
    where = f"at step {status.step:,} of {status.total_timesteps:,}"
    detail = f" ({status.detail})" if status.detail else ""
    if status.status == "running":
        return f"still running {where} ({run_dir.lock_holder()})"
    if status.status in ("interrupted", "failed"):
        return f"{status.status} {where}{detail}"
    if status.step < status.total_timesteps:
        return f"finished {where} (resume it to reach its budget)"
    return f"finished but has no {MODEL}"


def require_finished(run_dir: RunDir, total_timesteps: int) -> None:
    """Raise :class:`Skipped` with the reason unless the run dir's own record says finished."""
    try:
        finished = run_dir.is_finished()
        reason = "" if finished else unfinished_reason(run_dir, total_timesteps)
    # A run without status.json is judged from its evaluations, which run_dir parses strictly.
    except (ValueError, TypeError, KeyError) as error:
        reason = f"unreadable {EVALUATIONS} ({type(error).__name__})"
    if reason:
        raise Skipped(str(run_dir.path), reason)


def read_evaluations(run_dir: RunDir) -> pd.DataFrame:
    """The evaluations table, with a numeric steps column and at least one row."""
    path = run_dir.evaluations_path
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise Skipped(str(run_dir.path), f"no {EVALUATIONS}") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise Skipped(
            str(run_dir.path), f"unreadable {EVALUATIONS} ({type(error).__name__})"
        ) from None
    if table.empty:
        raise Skipped(str(run_dir.path), f"{EVALUATIONS} has no evaluation yet")
    steps = table.get(STEPS_COLUMN)
    if steps is None or not pd.api.types.is_numeric_dtype(steps) or steps.isna().any():
        raise Skipped(str(run_dir.path), f"{EVALUATIONS} has no numeric {STEPS_COLUMN} column")
    return table


def make_kwargs(run_dir: RunDir, cfg: DictConfig) -> dict[str, Any]:
    """The env's ``make_kwargs`` as a plain dict ({} when it has none)."""
    kwargs = OmegaConf.select(cfg, "env.make_kwargs")
    if kwargs is None:
        return {}
    if not isinstance(kwargs, DictConfig):
        raise Skipped(str(run_dir.path), f"its env.make_kwargs is not a mapping: {kwargs!r}")
    container = cast(dict[Any, Any], OmegaConf.to_container(kwargs, resolve=True))
    return {str(key): value for key, value in container.items()}


def load_run(path: Path) -> Run:
    """A finished run from its dir, labelled by its algo (``--by`` relabels it later).

    :raises NotARun: for a dir without a readable run config.
    :raises Skipped: for a run that is not finished, or whose files cannot be used.
    """
    run_dir = RunDir(path)
    cfg = run_dir.config()
    seed = integer(run_dir, cfg, "seed")
    require_finished(run_dir, integer(run_dir, cfg, "total_timesteps"))
    return Run(
        path=path,
        env=env_label(cfg.env),
        env_id=str(cfg.env.id),
        make_kwargs=make_kwargs(run_dir, cfg),
        algo=str(cfg.algo.name),
        seed=seed,
        evaluations=read_evaluations(run_dir),
        config=cfg,
    )


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def progress(message: str) -> None:
    """One progress line on stderr, where a user whose stdout is a file still sees it."""
    print(f"compare: {message}", file=sys.stderr, flush=True)


def candidate_dirs(input_dir: Path) -> list[Path]:
    """The input itself when it is a run dir, else its (non-hidden) subdirs: a sweep's jobs.

    :raises CompareError: when the input is not a dir or cannot be listed.
    """
    try:
        if not input_dir.is_dir():
            raise CompareError(f"{input_dir} is not a directory")
        if RunDir(input_dir).has_config():
            return [input_dir]
        return sorted(p for p in input_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as error:
        raise CompareError(f"{input_dir}: cannot read it ({error.strerror})") from None


def find_runs(inputs: Sequence[Path]) -> list[Run]:
    """Every finished run under ``inputs``, each once; a warning for each dir that is not one.

    :raises CompareError: for an input that is not a dir or that holds no finished run.
    """
    candidates = {input_dir: candidate_dirs(input_dir) for input_dir in inputs}
    total = sum(len(dirs) for dirs in candidates.values())
    if total >= PROGRESS_DIRS:
        progress(f"reading {total} dirs")
    runs: dict[Path, Run] = {}
    for input_dir, dirs in candidates.items():
        found = 0
        for candidate in dirs:
            try:
                run = load_run(candidate)
            except (NotARun, Skipped) as reason:
                warn(f"skipped {reason}")
                continue
            except OSError as error:  # a file of the run that this user may not read
                warn(f"skipped {candidate}: cannot read it ({error.strerror})")
                continue
            runs.setdefault(candidate.resolve(), run)
            found += 1
        if not found:
            raise CompareError(
                f"{input_dir} holds no finished run (a run dir has {CONFIG} or {HYDRA_CONFIG} "
                f"and a status or {EVALUATIONS} that says finished; a sweep dir has run dirs "
                "inside)"
            )
    if total >= PROGRESS_DIRS:
        progress(f"read {len(runs)} runs ({total - len(runs)} dirs skipped or counted twice)")
    return list(runs.values())


def with_metric(runs: Sequence[Run], metric: str) -> list[Run]:
    """The runs that have ``metric`` with a finite final value; others are skipped with a warning.

    :raises CompareError: when no run has it, naming the metrics that exist.
    """
    kept = [run for run in runs if metric in run.metrics()]
    if not kept:
        known = sorted({name for run in runs for name in run.metrics()})
        raise CompareError(
            f"--metric {metric} is not a numeric column of {EVALUATIONS}: "
            f"use one of {', '.join(known)}"
        )
    usable = []
    for run in runs:
        if metric not in run.metrics():
            warn(f"skipped {run.path}: its {EVALUATIONS} has no column {metric}")
        elif not math.isfinite(run.final(metric)):
            warn(f"skipped {run.path}: its final {metric} is {run.final(metric)}")
        else:
            usable.append(run)
    if not usable:
        raise CompareError(f"no run has a finite final {metric}")
    return usable


def config_keys(cfg: DictConfig) -> set[str]:
    """Every dotted key of a config, groups and leaves alike (``algo``, ``algo.name``)."""
    keys: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            keys.add(f"{prefix}{key}")
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return keys


def select(cfg: DictConfig, key: str) -> Any:
    """``cfg``'s value at dotted ``key``, or ``_ABSENT`` (a null value is a value)."""
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
    except OmegaConfBaseException:  # a key that is no dotted key at all, e.g. "a[0"
        return _ABSENT


def unknown_key(by: str, runs: Sequence[Run]) -> CompareError:
    """``--by KEY`` that no run has, with the similar keys that they do have."""
    keys = sorted(set().union(*(config_keys(run.config) for run in runs)))
    similar = difflib.get_close_matches(by, keys, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(similar)}?" if similar else "see a run's config.yaml"
    return CompareError(f"--by {by}: no run has this config key; {hint}")


def label_runs(runs: Sequence[Run], by: str) -> list[Run]:
    """The runs labelled ``algo, KEY=value`` (one ``KEY=value`` per comma-separated key);
    runs without a key are skipped with a warning.

    The algo stays in the label so that ``--by`` never pools two algorithms. Several keys make
    arms of combinations, e.g. ``dqn.replay.prioritized,dqn.n_steps`` (conf/experiment/
    minatar_replay.yaml).

    :raises CompareError: when no run has a key, a key names a group of keys, or is repeated.
    """
    if by == DEFAULT_BY:
        return list(runs)
    keys = [key.strip() for key in by.split(",")]
    if any(not key for key in keys):
        raise CompareError(f"--by {by}: an empty key between commas")
    if len(set(keys)) < len(keys):
        raise CompareError(f"--by {by}: a key is given twice")
    values = {key: [select(run.config, key) for run in runs] for key in keys}
    for key, of_key in values.items():
        if all(value is _ABSENT for value in of_key):
            raise unknown_key(key, runs)
        if any(isinstance(value, DictConfig) for value in of_key):
            raise CompareError(f"--by {key} is a group of keys, not a value: use one of its keys")
    labelled = []
    for index, run in enumerate(runs):
        missing = [key for key in keys if values[key][index] is _ABSENT]
        if missing:
            warn(f"skipped {run.path}: its config has no {', '.join(missing)} (algo {run.algo})")
            continue
        parts = [run.algo]
        for key in keys:
            value = values[key][index]
            shown = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
            parts.append(f"{key}={shown}")
        labelled.append(dataclasses.replace(run, algo=", ".join(parts)))
    return labelled


def group_runs(runs: Sequence[Run]) -> dict[Section, dict[str, list[Run]]]:
    """Section -> group label -> runs (sorted by seed, then path), all in name order.

    An env whose runs end at several steps gets one warning line: its budgets are compared
    apart, never pooled.
    """
    groups: dict[Section, dict[str, list[Run]]] = {}
    for run in sorted(runs, key=lambda r: (r.env, r.final_steps(), r.algo, r.seed, str(r.path))):
        section = Section(run.env, run.final_steps())
        groups.setdefault(section, {}).setdefault(run.algo, []).append(run)
    envs = sorted({section.env for section in groups})
    for env in envs:
        steps = [section.steps for section in groups if section.env == env]
        if len(steps) > 1:
            ends = ", ".join(f"{step:,}" for step in steps)
            warn(f"{env}: runs end at {ends} steps; each is compared on its own, never pooled")
    return groups


def one_run_per_seed(
    groups: Mapping[Section, Mapping[str, list[Run]]],
) -> dict[Section, dict[str, list[Run]]]:
    """The groups with the first run (path order) of each seed; one warning per repeated seed.

    Runs of one seed are one sample, not several: counting them would shrink every CI.
    """
    kept: dict[Section, dict[str, list[Run]]] = {}
    for section, labels in groups.items():
        for label, runs in labels.items():
            by_seed: dict[int, list[Run]] = {}
            for run in runs:
                by_seed.setdefault(run.seed, []).append(run)
            for seed, copies in by_seed.items():
                if len(copies) > 1:
                    dropped = ", ".join(str(run.path) for run in copies[1:])
                    warn(
                        f"{section}, {label}: seed {seed} in {len(copies)} runs counts once "
                        f"(kept {copies[0].path}; dropped {dropped})"
                    )
            kept.setdefault(section, {})[label] = [copies[0] for copies in by_seed.values()]
    return kept


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
    """Everything that the table says about one section (an env set-up at one final step)."""

    env: str
    steps: int
    runs: dict[str, list[Run]]
    iqm: dict[str, Estimate]
    mean: dict[str, Estimate]
    improvement: dict[tuple[str, str], Estimate]
    optimum: float | None

    @property
    def section(self) -> Section:
        return Section(self.env, self.steps)


def compare_env(
    section: Section, runs: dict[str, list[Run]], metric: str, reps: int, seed: int
) -> EnvComparison:
    """Final IQM and mean per group and P(X > Y) per pair of groups, with bootstrap CIs."""
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
        env=section.env,
        steps=section.steps,
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
    groups: Mapping[Section, Mapping[str, list[Run]]],
    optima: Mapping[Section, float | None],
    metric: str,
    reps: int,
    seed: int,
    min_runs: int = DEFAULT_MIN_RUNS,
) -> Figure:
    """A panel per section; per group the mean over runs with its 95 % band (n in the legend).

    A group keeps one colour in every panel; a group below ``min_runs`` is drawn dashed and
    says so in the legend, since its curve supports no verdict. Panels wrap after three so
    that many envs or budgets stay readable.
    """
    labels = sorted({label for runs in groups.values() for label in runs})
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    columns = min(len(groups), 3)
    rows = math.ceil(len(groups) / columns)
    fig = Figure(figsize=(6.4 * columns, 4.8 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (section, runs) in zip(axes, groups.items(), strict=False):
        for algo, algo_runs in runs.items():
            curve = mean_curve(algo_runs, metric, reps, seed)
            if curve is None:
                warn(f"{section}, {algo}: its runs share no range of steps; no curve drawn")
                continue
            steps, estimates = curve
            n = len(algo_runs)
            few = n < min_runs
            label = f"{algo} (n={n}{f' < {min_runs}: no verdict' if few else ''})"
            points = [e.point for e in estimates]
            colour = colours[algo]
            ax.plot(
                steps, points, color=colour, ls="--" if few else "-", marker="o", ms=3, label=label
            )
            low, high = [e.low for e in estimates], [e.high for e in estimates]
            ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
        if (optimum := optima.get(section)) is not None:
            ax.axhline(
                optimum,
                color="black",
                ls="--",
                lw=1,
                label=f"optimum (value iteration) {optimum:.3g}",
            )
        ax.set_title(textwrap.fill(str(section), 70), fontsize="medium")  # long env labels wrap
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"{metric} (evaluation)")
        ax.grid(alpha=0.3)
        # Below the panel: inside, it can hide curves or the optimum, which often sits at the top.
        # Two columns of long labels (--by with several keys) are wider than the panel.
        longest = max((len(label) for label in ax.get_legend_handles_labels()[1]), default=0)
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncol=2 if longest <= LEGEND_TWO_COLUMNS_MAX else 1,
            fontsize="small",
            frameon=False,
            title=f"mean over n runs; shaded: {CONFIDENCE:.0%} bootstrap CI",
        )
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    return fig


def reading(estimate: Estimate, x: str, y: str, n: tuple[int, int], min_runs: int) -> str:
    """Plain words for P(X > Y): a winner only with ``min_runs`` runs each and a CI off 0.5."""
    if min(n) < min_runs:
        return f"too few runs for a verdict (n={n[0]} vs {n[1]}; need {min_runs} each)"
    if estimate.low > 0.5:
        return f"{x} better"
    if estimate.high < 0.5:
        return f"{y} better"
    return "no clear difference (CI contains 0.5)"


def cell(text: object) -> str:
    """``text`` safe inside a markdown table cell (a ``|`` or newline in a path would split it)."""
    return str(text).replace("|", r"\|").replace("\n", " ")


def env_section(result: EnvComparison, metric: str, min_runs: int) -> list[str]:
    """The markdown of one section: the group table, P(X > Y) per pair, and the runs."""
    lines = [
        f"## {cell(result.section)}",
        "",
        "| group | n | final at steps | IQM [95% CI] | mean [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for algo, runs in result.runs.items():
        lines.append(
            f"| {cell(algo)} | {len(runs)} | {result.steps} | {result.iqm[algo]} "
            f"| {result.mean[algo]} |"
        )
    if result.optimum is not None:
        lines.append(
            f"| optimum (value iteration, within the time limit) | | | "
            f"{result.optimum:.4g} | {result.optimum:.4g} |"
        )
    if result.improvement:
        lines += ["", "| X | Y | n | P(X > Y) [95% CI] | reading |", "|---|---|---|---|---|"]
        for (x, y), estimate in result.improvement.items():
            n = (len(result.runs[x]), len(result.runs[y]))
            lines.append(
                f"| {cell(x)} | {cell(y)} | {n[0]} vs {n[1]} | {estimate} "
                f"| {cell(reading(estimate, x, y, n, min_runs))} |"
            )
    lines += ["", f"| group | seed | final {cell(metric)} | run dir |", "|---|---|---|---|"]
    for algo, runs in result.runs.items():
        lines += [
            f"| {cell(algo)} | {run.seed} | {run.final(metric):.4g} | {cell(run.path)} |"
            for run in runs
        ]
    return [*lines, ""]


def comparison_markdown(
    results: Sequence[EnvComparison],
    metric: str,
    inputs: Sequence[Path],
    reps: int,
    seed: int,
    min_runs: int,
) -> str:
    """The whole ``comparison.md``: how it was computed, then a section per env and budget."""
    header = [
        "# Which algorithm is better: final evaluations",
        "",
        f"- inputs: {', '.join(str(p) for p in inputs)}",
        f"- final = `{metric}` in the last row of each run's `{EVALUATIONS}`; a section per env "
        "and final step (runs of different budgets are never pooled), one run per seed",
        "- IQM = mean of the middle 50 % of runs; P(X > Y) = chance that a random run of X ends "
        "above a random run of Y (ties count half; 0.5 = no difference)",
        f"- a verdict needs at least {min_runs} runs per group and a CI that excludes 0.5; "
        "n = runs (distinct seeds) in each group",
        f"- all by rliable: {CONFIDENCE:.0%} stratified-bootstrap percentile CIs, {reps} "
        f"replications, seed {seed}",
        f"- learning curves: [{PLOT_NAME}]({PLOT_NAME})",
        "",
    ]
    body = [line for result in results for line in env_section(result, metric, min_runs)]
    return "\n".join(header + body)


def in_range(name: str, value: int, low: int, high: int, why: str = "") -> None:
    """Refuse an integer option outside ``low..high`` with one line."""
    if not low <= value <= high:
        raise CompareError(f"{name} must be in {low}..{high}{why}, got {value}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, every value checked here so that no bad one reaches the work."""
    parser = OneLineParser(
        prog="python -m experiments.compare",
        description="Compare finished runs: learning_curves.png and comparison.md (rliable).",
    )
    # Strings, not Path: Path("") is ".", which would hide an empty argument (an unset variable).
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run or sweep dirs")
    parser.add_argument(
        "--metric",
        default=DEFAULT_METRIC,
        help=f"numeric column of {EVALUATIONS} to compare (default: %(default)s)",
    )
    parser.add_argument("--out", help="output dir (default: the first DIR)")
    parser.add_argument(
        "--reps", type=int, default=DEFAULT_REPS, help="bootstrap replications (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (%(default)s)")
    parser.add_argument(
        "--min-runs",
        type=int,
        default=DEFAULT_MIN_RUNS,
        help="runs per group below which no better/worse verdict is given (%(default)s, >= 2)",
    )
    parser.add_argument(
        "--by",
        default=DEFAULT_BY,
        metavar="KEY",
        help="config key that splits each algo's runs, e.g. dqn.learning_rate; several, "
        "comma-separated, make arms of their combinations (default: the algo alone)",
    )
    args = parser.parse_args(argv)
    in_range("--reps", args.reps, 1, MAX_REPS)
    in_range("--seed", args.seed, 0, MAX_SEED)
    in_range("--min-runs", args.min_runs, 2, sys.maxsize, " (a bootstrap of 1 run has no width)")
    for option, value in (("--metric", args.metric), ("--by", args.by), ("--out", args.out)):
        if value is not None and not value.strip():
            raise CompareError(f"{option} is empty: give a name")
    args.dirs = dir_paths(args.dirs)
    args.out = Path(args.dirs[0] if args.out is None else args.out)
    return args


def dir_paths(texts: Sequence[str]) -> list[Path]:
    """The DIR arguments as paths. Strings until here, not Path: Path("") is ".", which would
    hide an empty argument (an unset variable). :raises CompareError: for an empty one."""
    if any(not text.strip() for text in texts):
        raise CompareError("an empty DIR was given (an unset shell variable?)")
    return [Path(text) for text in texts]


def out_problem(out: Path) -> str | None:
    """Why the table and the plot could not be written into ``out``, or None when they can.

    Checked before any work, without creating anything: the nearest existing dir on the way
    must be one this process can write in.
    """
    try:
        existing = out
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            return f"{existing} is a file, not a directory"
        for name in (TABLE_NAME, PLOT_NAME):
            if existing == out and (out / name).is_dir():
                return f"{out / name} is a directory"
    except OSError as error:
        return f"cannot reach it ({error.strerror})"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"permission denied: cannot write in {existing}"
    return None


def bootstrap_size(groups: Mapping[Section, Mapping[str, list[Run]]], reps: int) -> int:
    """Bootstrap replications in all: per group its IQM/mean and its curve, per pair P(X > Y)."""
    estimates = sum(2 * len(labels) + math.comb(len(labels), 2) for labels in groups.values())
    return estimates * reps


def compare_sections(
    groups: Mapping[Section, dict[str, list[Run]]], metric: str, reps: int, seed: int
) -> list[EnvComparison]:
    """Every section's statistics, with a progress line per section when that takes a while."""
    loud = bootstrap_size(groups, reps) >= PROGRESS_REPLICATIONS
    if loud:
        n_groups = sum(len(labels) for labels in groups.values())
        progress(f"bootstrapping {n_groups} groups in {len(groups)} sections ({reps} reps)")
    results = []
    for i, (section, labels) in enumerate(groups.items(), 1):
        if loud:
            progress(f"[{i}/{len(groups)}] {section}: {len(labels)} groups")
        results.append(compare_env(section, labels, metric, reps, seed))
    if loud:
        progress("drawing the learning curves")
    return results


def write_outputs(out: Path, markdown: str, figure: Figure) -> None:
    """Write the table and the plot; a failure (disk full, a race) is one line."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        # UTF-8 whatever the locale; an undecodable byte of a path name shows as \x.. escapes.
        (out / TABLE_NAME).write_text(markdown, encoding="utf-8", errors="backslashreplace")
        figure.savefig(out / PLOT_NAME, dpi=110, bbox_inches="tight")  # nothing clipped
    except OSError as error:
        raise CompareError(f"--out {out}: cannot write ({error.strerror})") from None


def compare(
    inputs: Sequence[Path],
    out: Path,
    metric: str = DEFAULT_METRIC,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    by: str = DEFAULT_BY,
    min_runs: int = DEFAULT_MIN_RUNS,
) -> list[EnvComparison]:
    """Read the runs under ``inputs``, write the table and the plot into ``out``.

    :param by: a config key that splits each algo's runs further (default: the algo alone);
        several, comma-separated, split by their combinations.
    :param min_runs: runs per group below which a pair gets no better/worse reading.
    :raises CompareError: for an unwritable ``out``, inputs without runs, an unknown metric or
        ``--by`` key.
    """
    for input_dir in inputs:  # a mistyped DIR first: --out defaults to it
        candidate_dirs(input_dir)
    if (problem := out_problem(out)) is not None:
        raise CompareError(f"--out {out}: {problem}")
    runs = label_runs(with_metric(find_runs(inputs), metric), by)
    groups = one_run_per_seed(group_runs(runs))
    results = compare_sections(groups, metric, reps, seed)
    optima = {result.section: result.optimum for result in results}
    figure = learning_curves_figure(groups, optima, metric, reps, seed, min_runs)
    markdown = comparison_markdown(results, metric, inputs, reps, seed, min_runs)
    write_outputs(out, markdown, figure)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 on success, 1 with one ``error:`` line on stderr otherwise."""
    try:
        args = parse_args(argv)
        out = args.out
        compare(args.dirs, out, args.metric, args.reps, args.seed, args.by, args.min_runs)
    except (CompareError, ConfigError) as error:  # ConfigError: the command line (argparse)
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out / TABLE_NAME} and {out / PLOT_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
