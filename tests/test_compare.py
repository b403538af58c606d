"""experiments/compare.py on run dirs written by hand: statistics, curves, CLI and its errors."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from omegaconf import OmegaConf

from experiments import compare as cmp
from experiments.run_dir import HYDRA_CONFIG, RunDir

REPS = 200  # quick; the statistics' point estimates do not depend on it
COLUMNS = ("timesteps", "episodes", "mean_reward", "std_reward", "mean_ep_length", "scores")


def write_run(
    run_dir: Path,
    finals: float | Sequence[float],
    *,
    algo: str = "dqn",
    seed: int = 0,
    env: str = "cartpole",
    env_id: str = "CartPole-v1",
    make_kwargs: dict | None = None,
    steps: Sequence[int] = (500, 1000),
    total_timesteps: int | None = None,
    extra: dict[str, Sequence[float]] | None = None,
    status: str | None = "finished",
    more: dict | None = None,
) -> Path:
    """A run dir as training leaves it, written through RunDir's own writers.

    :param finals: mean_reward per row (one number: that at every row).
    :param total_timesteps: the budget (default: the last evaluation step).
    :param extra: more columns, put first so that nothing may rely on column positions.
    :param status: what status.json says, at the last evaluation step; None for a run from
        before status.json (its config only in ``.hydra/config.yaml``).
    :param more: more config keys (e.g. ``{"dqn": {"learning_rate": 0.01}}``).
    """
    total = steps[-1] if total_timesteps is None else total_timesteps
    config = OmegaConf.create(
        {
            "env": {"name": env, "id": env_id, "make_kwargs": make_kwargs or {}},
            "algo": {"name": algo, "kwargs": {}},
            "seed": seed,
            "total_timesteps": total,
            **(more or {}),
        }
    )
    run = RunDir(run_dir)
    if status is None:
        (run_dir / HYDRA_CONFIG).parent.mkdir(parents=True)
        OmegaConf.save(config, run_dir / HYDRA_CONFIG)
    else:
        run.write_config(config)
        run.write_status(status, steps[-1], total)  # type: ignore[arg-type]
    if status in (None, "finished"):
        run.model_path.write_bytes(b"PK")
    values = [finals] * len(steps) if isinstance(finals, int | float) else list(finals)
    extra = extra or {}
    header = [*extra, *COLUMNS]
    lines = [",".join(header)]
    for i, (step, value) in enumerate(zip(steps, values, strict=True)):
        row = [*(f"{column[i]}" for column in extra.values())]
        row += [f"{step}", "3", f"{value}", "1.0", "10", f"{value - 1:g} {value:g} {value + 1:g}"]
        lines.append(",".join(row))
    run.evaluations_path.write_text("\n".join(lines) + "\n")
    return run_dir


def write_sweep(root: Path, finals: dict[str, Sequence[float]], **kwargs: object) -> Path:
    """A sweep dir with one job dir per (algo, seed), named as Hydra names them."""
    job = 0
    for algo, values in finals.items():
        for seed, value in enumerate(values):
            write_run(
                root / f"{job}_cartpole_{algo}_seed{seed}", value, algo=algo, seed=seed, **kwargs
            )  # type: ignore[arg-type]
            job += 1
    return root


def hand_iqm(x: Sequence[float]) -> float:
    """Interquartile mean: drop the lowest and the highest quarter (floor(n/4) runs each)."""
    ordered = np.sort(np.asarray(x, dtype=float))
    cut = len(ordered) // 4
    return float(ordered[cut : len(ordered) - cut].mean())


def hand_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """P(X > Y) over all pairs of runs, ties half."""
    xs, ys = np.asarray(x)[:, None], np.asarray(y)[None, :]
    return float(np.mean(xs > ys) + 0.5 * np.mean(xs == ys))


FINALS = {
    # Outliers on both sides so that IQM, mean and median all differ.
    "dqn": [10.0, 200.0, 210.0, 220.0, 230.0, 240.0, 250.0, 500.0],
    "expected_sarsa": [0.0, 190.0, 235.0, 260.0, 270.0, 280.0, 300.0, 305.0],
}


@pytest.mark.parametrize("n_seeds", [8, 5])
def test_final_iqm_and_mean_are_the_hand_computed_ones_inside_their_cis(
    tmp_path: Path, n_seeds: int
) -> None:
    finals = {algo: values[:n_seeds] for algo, values in FINALS.items()}
    sweep = write_sweep(tmp_path / "sweep", finals)
    (result,) = cmp.compare([sweep], tmp_path / "out", reps=REPS)
    assert result.env == "cartpole"
    for algo, values in finals.items():
        iqm, mean = result.iqm[algo], result.mean[algo]
        assert iqm.point == pytest.approx(hand_iqm(values))
        assert mean.point == pytest.approx(np.mean(values))
        assert iqm.point != pytest.approx(mean.point)  # else this test could not tell them apart
        for estimate in (iqm, mean):
            assert estimate.low <= estimate.point <= estimate.high
            assert estimate.low < estimate.high  # a real interval from 5+ distinct runs
            assert min(values) <= estimate.low and estimate.high <= max(values)


def test_probability_of_improvement_is_the_pairwise_count(tmp_path: Path) -> None:
    finals = {"a": [1.0, 2.0, 3.0, 3.0], "b": [0.0, 3.0, 1.5, 0.5, 2.5]}
    sweep = write_sweep(tmp_path / "sweep", finals)
    (result,) = cmp.compare([sweep], tmp_path / "out", reps=REPS)
    estimate = result.improvement[("a", "b")]
    assert estimate.point == pytest.approx(hand_improvement(finals["a"], finals["b"]))
    assert estimate.low <= estimate.point <= estimate.high


def test_a_clear_winner_is_read_as_better(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", {"good": [9.0, 10.0, 11.0, 12.0], "bad": [1, 2, 3, 4]})
    cmp.compare([sweep], tmp_path / "out", reps=REPS)
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "| bad | good | 4 vs 4 | 0 [0, 0] | good better |" in table


def test_same_seed_same_cis_and_numpy_state_untouched(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", FINALS)
    # rliable resamples with numpy's legacy global generator: compare must leave it as it was.
    before = np.random.get_state()  # noqa: NPY002
    first = cmp.compare([sweep], tmp_path / "out1", reps=REPS, seed=7)
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    second = cmp.compare([sweep], tmp_path / "out2", reps=REPS, seed=7)
    assert first[0].iqm == second[0].iqm and first[0].improvement == second[0].improvement


def test_cli_writes_table_and_plot_into_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = write_sweep(tmp_path / "sweep", FINALS)
    out = tmp_path / "report"
    assert cmp.main([str(sweep), "--out", str(out), "--reps", str(REPS)]) == 0
    table = (out / "comparison.md").read_text()
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    iqm = f"{hand_iqm(FINALS['dqn']):.4g}"
    assert f"| dqn | 8 | 1000 | {iqm} [" in table
    assert f"| expected_sarsa | 8 | 1000 | {hand_iqm(FINALS['expected_sarsa']):.4g} [" in table
    assert "| dqn | expected_sarsa | 8 vs 8 |" in table
    assert capsys.readouterr().err == ""


def test_default_out_is_the_first_input(tmp_path: Path) -> None:
    first = write_run(tmp_path / "outputs" / "run_a", 5.0)
    second = write_run(tmp_path / "outputs" / "run_b", 7.0, algo="double_dqn")
    assert cmp.main([str(first), str(second), "--reps", str(REPS)]) == 0
    assert (first / "comparison.md").is_file() and (first / "learning_curves.png").is_file()
    assert not (second / "comparison.md").exists()


def test_run_dirs_and_sweep_dirs_mix_and_count_once(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", {"dqn": [1.0, 2.0]})
    single = write_run(tmp_path / "outputs" / "x", 3.0, algo="dqn", seed=5)
    job = sweep / "0_cartpole_dqn_seed0"
    (result,) = cmp.compare([sweep, single, job], tmp_path / "out", reps=REPS)
    assert sorted(run.seed for run in result.runs["dqn"]) == [0, 1, 5]


def test_by_compares_runs_of_one_algo_by_any_config_key(tmp_path: Path) -> None:
    for seed, value in enumerate([1.0, 2.0, 3.0, 4.0]):
        lr = {"dqn": {"learning_rate": 0.001 if seed < 2 else 0.01}}
        write_run(tmp_path / "sweep" / f"{seed}", value, seed=seed, more=lr)
    sweep = tmp_path / "sweep"

    (by_algo,) = cmp.compare([sweep], tmp_path / "algo", reps=REPS)
    (by_lr,) = cmp.compare([sweep], tmp_path / "lr", reps=REPS, by="dqn.learning_rate")

    assert list(by_algo.runs) == ["dqn"]
    low, high = (
        by_lr.runs["dqn, dqn.learning_rate=0.001"],
        by_lr.runs["dqn, dqn.learning_rate=0.01"],
    )
    assert [run.final("mean_reward") for run in low + high] == [1.0, 2.0, 3.0, 4.0]
    assert (
        "| dqn, dqn.learning_rate=0.001 | dqn, dqn.learning_rate=0.01 | 2 vs 2 |"
        in (tmp_path / "lr" / "comparison.md").read_text()
    )


def test_by_never_pools_two_algorithms_and_skips_runs_without_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for seed in range(3):
        write_run(tmp_path / "s" / f"d{seed}", 1.0 + seed, seed=seed, more={"batch": 32})
        write_run(tmp_path / "s" / f"p{seed}", 5.0, algo="ppo", seed=seed, more={"batch": 32})
    write_run(tmp_path / "s" / "old", 1.0, seed=7)  # from before the key existed
    (result,) = cmp.compare([tmp_path / "s"], tmp_path / "out", reps=REPS, by="batch")
    assert sorted(result.runs) == ["dqn, batch=32", "ppo, batch=32"]
    assert all(len(runs) == 3 for runs in result.runs.values())
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "old: its config has no batch (algo dqn)" in err[0]


def test_by_several_keys_makes_arms_of_their_combinations(tmp_path: Path) -> None:
    arms = [(False, 1), (True, 1), (False, 3)]
    for arm, (prioritized, n_steps) in enumerate(arms):
        more = {"dqn": {"n_steps": n_steps, "replay": {"prioritized": prioritized}}}
        for seed in range(3):
            write_run(tmp_path / "s" / f"{arm}_{seed}", 1.0 + arm, seed=seed, more=more)
    by = "dqn.replay.prioritized,dqn.n_steps"
    (result,) = cmp.compare([tmp_path / "s"], tmp_path / "out", reps=REPS, by=by)
    assert sorted(result.runs) == [
        "dqn, dqn.replay.prioritized=False, dqn.n_steps=1",
        "dqn, dqn.replay.prioritized=False, dqn.n_steps=3",
        "dqn, dqn.replay.prioritized=True, dqn.n_steps=1",
    ]
    assert all(len(runs) == 3 for runs in result.runs.values())


def test_unknown_by_key_is_one_line_naming_similar_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    lr = {"dqn": {"learning_rate": 0.01}}
    run = write_run(tmp_path / "r", 1.0, more=lr)
    argv = [str(run), "--out", str(tmp_path / "out"), "--reps", str(REPS)]
    assert cmp.main([*argv, "--by", "dqn.learnin_rate"]) == 1
    assert "did you mean dqn.learning_rate?" in one_error_line(capsys)
    assert cmp.main([*argv, "--by", "zzz"]) == 1
    assert "--by zzz: no run has this config key" in one_error_line(capsys)
    assert cmp.main([*argv, "--by", "dqn"]) == 1
    assert "--by dqn is a group of keys" in one_error_line(capsys)
    assert cmp.main([*argv, "--by", "dqn.learning_rate,zzz"]) == 1
    assert "--by zzz: no run has this config key" in one_error_line(capsys)
    assert cmp.main([*argv, "--by", "dqn.learning_rate,"]) == 1
    assert "an empty key between commas" in one_error_line(capsys)
    assert cmp.main([*argv, "--by", "dqn.learning_rate,dqn.learning_rate"]) == 1
    assert "a key is given twice" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_extra_columns_are_tolerated_and_metric_picks_one(tmp_path: Path) -> None:
    for seed, wall in enumerate([30.0, 10.0, 20.0]):
        extra = {"wall_time_s": [wall / 2, wall], "truncated": [0, 1]}
        write_run(tmp_path / "sweep" / f"{seed}", 100.0 + seed, seed=seed, extra=extra)
    (by_reward,) = cmp.compare([tmp_path / "sweep"], tmp_path / "o1", reps=REPS)
    assert by_reward.mean["dqn"].point == pytest.approx(101.0)
    (by_wall,) = cmp.compare([tmp_path / "sweep"], tmp_path / "o2", "wall_time_s", reps=REPS)
    assert by_wall.mean["dqn"].point == pytest.approx(20.0)


def test_final_is_the_last_row_even_when_a_step_repeats(tmp_path: Path) -> None:
    # The end-of-training evaluation (more games) can share its step with the last periodic one.
    run = write_run(tmp_path / "r", [1.0, 2.0, 3.0], steps=(500, 1000, 1000))
    (result,) = cmp.compare([run], tmp_path / "out", reps=REPS)
    loaded = result.runs["dqn"][0]
    assert loaded.final("mean_reward") == 3.0
    steps, values = loaded.curve("mean_reward")
    np.testing.assert_array_equal(steps, [500, 1000])
    np.testing.assert_array_equal(values, [1.0, 3.0])


def test_curves_on_different_steps_are_interpolated_on_their_common_range() -> None:
    a = (np.array([0.0, 100.0, 200.0]), np.array([0.0, 10.0, 20.0]))
    b = (np.array([50.0, 150.0, 250.0]), np.array([5.0, 5.0, 25.0]))
    grid = cmp.common_grid([a, b])
    np.testing.assert_array_equal(grid, [50, 100, 150, 200])  # both cover 50..200 only
    np.testing.assert_allclose(cmp.on_grid([a, b], grid), [[5, 10, 15, 20], [5, 5, 5, 15]])
    assert cmp.common_grid([a, (np.array([300.0]), np.array([1.0]))]).size == 0


def test_mean_curve_band_contains_the_mean(tmp_path: Path) -> None:
    runs = [
        cmp.load_run(write_run(tmp_path / f"r{i}", [i, 2.0 * i], seed=i, steps=(500, 1000)))
        for i in range(1, 5)
    ]
    curve = cmp.mean_curve(runs, "mean_reward", REPS, seed=0)
    assert curve is not None
    steps, estimates = curve
    np.testing.assert_array_equal(steps, [500, 1000])
    assert [e.point for e in estimates] == pytest.approx([2.5, 5.0])
    assert all(e.low <= e.point <= e.high and e.low < e.high for e in estimates)


def test_frozenlake_gets_the_value_iteration_optimum(tmp_path: Path) -> None:
    kwargs = {"map_name": "4x4", "is_slippery": True}
    for seed in range(3):
        write_run(
            tmp_path / "sweep" / f"{seed}",
            0.7 + 0.01 * seed,
            seed=seed,
            env="frozenlake",
            env_id="FrozenLake-v1",
            make_kwargs=kwargs,
        )
    write_run(tmp_path / "sweep" / "cp", 100.0, seed=9)
    results = cmp.compare([tmp_path / "sweep"], tmp_path / "out", reps=REPS)
    by_env = {result.env: result for result in results}
    lake = by_env["frozenlake (is_slippery=True, map_name=4x4)"]
    assert lake.steps == 1000
    assert lake.optimum == pytest.approx(0.7442, abs=5e-4)
    assert by_env["cartpole"].optimum is None
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "| optimum (value iteration, within the time limit) | | | 0.7442 | 0.7442 |" in table
    assert table.index("## cartpole, 1,000 steps") < table.index("## frozenlake")
    # The optimum is a return: no reference line for another metric.
    others = cmp.compare([tmp_path / "sweep"], tmp_path / "o2", "std_reward", reps=REPS)
    assert all(result.optimum is None for result in others)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "ALE/NoSuchGame-v5", "NotAnEnv-v0"])
def test_envs_without_a_transition_model_have_no_optimum(env_id: str) -> None:
    assert cmp.optimal_return(env_id, {}) is None


def test_figure_has_a_panel_per_env_with_algos_and_optimum(tmp_path: Path) -> None:
    write_sweep(tmp_path / "cp", {"dqn": [1.0, 2.0], "softmax": [3.0]})
    write_run(
        tmp_path / "fl",
        0.5,
        env="frozenlake",
        env_id="FrozenLake-v1",
        make_kwargs={"map_name": "4x4", "is_slippery": True},
    )
    groups = cmp.group_runs(cmp.find_runs([tmp_path / "cp", tmp_path / "fl"]))
    optima = {
        section: cmp.optimal_return(runs["dqn"][0].env_id, runs["dqn"][0].make_kwargs)
        for section, runs in groups.items()
    }
    fig = cmp.learning_curves_figure(groups, optima, "mean_reward", REPS, seed=0, min_runs=2)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "cartpole, 1,000 steps",
        "frozenlake (is_slippery=True, map_name=4x4), 1,000 steps",
    ]
    labels = [[text.get_text() for text in ax.get_legend().get_texts()] for ax in fig.axes]
    assert labels[0] == ["dqn (n=2)", "softmax (n=1 < 2: no verdict)"]
    assert labels[1] == ["dqn (n=1 < 2: no verdict)", "optimum (value iteration) 0.744"]
    dqn_colours = {ax.get_lines()[0].get_color() for ax in fig.axes}
    assert len(dqn_colours) == 1  # one group, one colour, in every panel
    assert all(ax.get_xlabel() == "env steps" for ax in fig.axes)


def test_long_legend_labels_stack_in_one_column_inside_the_saved_image(tmp_path: Path) -> None:
    # --by with two keys: labels as long as the panel is wide (two columns were clipped).
    for seed, (prioritized, n_steps) in enumerate([(False, 1), (True, 3)]):
        more = {"dqn": {"replay": {"prioritized": prioritized}, "n_steps": n_steps}}
        write_run(tmp_path / f"{seed}", 1.0 + seed, seed=seed, more=more)
    runs = cmp.label_runs(cmp.find_runs([tmp_path]), "dqn.replay.prioritized,dqn.n_steps")
    fig = cmp.learning_curves_figure(cmp.group_runs(runs), {}, "mean_reward", REPS, 0, 2)
    (ax,) = fig.axes
    texts = ax.get_legend().get_texts()
    assert max(len(text.get_text()) for text in texts) > cmp.LEGEND_TWO_COLUMNS_MAX
    assert ax.get_legend()._ncols == 1
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)  # constrained layout places the legend
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert legend_box.x0 >= 0 and legend_box.x1 <= fig.bbox.x1  # inside the figure


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    """The single stderr line of a failed command (no traceback, no usage block)."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_module_run_from_a_shell_fails_with_one_line(tmp_path: Path) -> None:
    # As a user runs it: nothing that rliable, arch or matplotlib print at import may add lines.
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "experiments.compare", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        f"error: {tmp_path / 'empty'} holds no finished run (a run dir has config.yaml or "
        ".hydra/config.yaml and a status or evaluations.csv that says finished; a sweep dir "
        "has run dirs inside)"
    ]
    assert done.stdout == ""


def test_missing_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cmp.main([str(tmp_path / "nope")]) != 0
    assert "nope is not a directory" in one_error_line(capsys)
    (tmp_path / "file").write_text("")  # also the default --out: the DIR is named, not --out
    assert cmp.main([str(tmp_path / "file")]) != 0
    assert one_error_line(capsys) == f"error: {tmp_path / 'file'} is not a directory"


def test_empty_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert cmp.main([str(tmp_path / "empty")]) != 0
    assert "holds no finished run" in one_error_line(capsys)


def test_no_dir_argument_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert cmp.main([]) != 0
    assert "DIR" in one_error_line(capsys)


def test_unknown_metric_is_one_line_naming_the_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = write_run(tmp_path / "r", 1.0)
    assert cmp.main([str(run), "--metric", "score", "--reps", str(REPS)]) != 0
    line = one_error_line(capsys)
    assert "--metric score" in line and "mean_reward" in line and "scores" not in line


def test_sweep_with_only_unfinished_runs_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_run(tmp_path / "sweep" / "0", 1.0, steps=(500,), total_timesteps=1000, status=None)
    assert cmp.main([str(tmp_path / "sweep")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("warning: skipped") and "last evaluation at 500 of 1,000" in err[0]
    assert err[1].startswith("error: ") and len(err) == 2


def test_each_dir_that_is_not_a_finished_run_gets_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep = write_sweep(tmp_path / "sweep", {"dqn": [1.0, 2.0]})
    (sweep / "notes").mkdir()  # not a run at all
    # A run from before status.json, with model.zip, whose last evaluation is short:
    write_run(sweep / "stopped", 1.0, steps=(500,), total_timesteps=1000, status=None)
    (sweep / "no_evals" / ".hydra").mkdir(parents=True)
    (sweep / "no_evals" / ".hydra" / "config.yaml").write_text("env: {name: cartpole}\n")
    header_only = write_run(sweep / "header_only", 1.0)
    (header_only / "evaluations.csv").write_text(",".join(COLUMNS) + "\n")
    bad_seed = write_run(sweep / "bad_seed", 1.0, seed=3)
    RunDir(bad_seed).write_config(OmegaConf.merge(RunDir(bad_seed).config(), {"seed": "x"}))
    (sweep / "broken").mkdir()
    (sweep / "broken" / "config.yaml").write_text("env: [\n")  # a truncated config
    (sweep / ".submitit").mkdir()  # hidden: launcher state, not a job
    (result,) = cmp.compare([sweep], tmp_path / "out", reps=REPS)
    assert len(result.runs["dqn"]) == 2
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 6
    reasons = {
        name: line
        for line in warnings
        for name in ("stopped", "header_only", "no_evals", "notes", "bad_seed", "broken")
        if f"/{name}" in line
    }
    assert "unfinished: last evaluation at 500 of 1,000 steps" in reasons["stopped"]
    assert "no evaluation yet" in reasons["header_only"]
    assert "has no env.id" in reasons["no_evals"]
    assert "not a run dir" in reasons["notes"]
    assert "its seed is not an integer: 'x'" in reasons["bad_seed"]
    assert "config.yaml: unreadable (ParserError)" in reasons["broken"]


def test_one_run_per_group_shows_p_but_gives_no_verdict(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", {"dqn": [500.0], "softmax": [10.0]})
    (result,) = cmp.compare([sweep], tmp_path / "out", reps=REPS)
    assert result.improvement[("dqn", "softmax")].point == 1.0
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert (
        "| dqn | softmax | 1 vs 1 | 1 [1, 1] | too few runs for a verdict "
        "(n=1 vs 1; need 3 each) |" in table
    )
    assert "better" not in table.replace("Which algorithm is better", "")


def test_min_runs_sets_the_verdict_threshold(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", {"good": [9.0, 10.0], "bad": [1.0, 2.0]})
    cmp.compare([sweep], tmp_path / "three", reps=REPS)
    cmp.compare([sweep], tmp_path / "two", reps=REPS, min_runs=2)
    assert "(n=2 vs 2; need 3 each)" in (tmp_path / "three" / "comparison.md").read_text()
    assert "| good better |" in (tmp_path / "two" / "comparison.md").read_text()


def test_runs_of_different_budgets_are_never_pooled(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for seed in range(3):
        write_run(tmp_path / "s" / f"short{seed}", 10.0 + seed, seed=seed, steps=(500, 1000))
        write_run(tmp_path / "s" / f"long{seed}", 400.0 + seed, seed=seed, steps=(25000, 50000))
    results = cmp.compare([tmp_path / "s"], tmp_path / "out", reps=REPS)
    assert [(r.env, r.steps) for r in results] == [("cartpole", 1000), ("cartpole", 50000)]
    assert [r.iqm["dqn"].point for r in results] == [pytest.approx(11.0), pytest.approx(401.0)]
    assert all(len(r.runs["dqn"]) == 3 for r in results)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "warning: cartpole: runs end at 1,000, 50,000 steps; each is compared on its own, "
        "never pooled"
    )
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "## cartpole, 1,000 steps" in table and "## cartpole, 50,000 steps" in table


def test_a_repeated_seed_counts_once_and_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for copy in range(5):
        write_run(tmp_path / "s" / f"copy{copy}", 100.0 + copy, seed=0)
    write_run(tmp_path / "s" / "other", 7.0, seed=1)
    (result,) = cmp.compare([tmp_path / "s"], tmp_path / "out", reps=REPS)
    assert [(run.seed, run.path.name) for run in result.runs["dqn"]] == [(0, "copy0"), (1, "other")]
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("warning: cartpole, 1,000 steps, dqn: seed 0 in 5 runs counts once")
    assert "kept " in line and line.count("copy") == 5


@pytest.mark.parametrize("status", ["interrupted", "running", "failed"])
def test_a_run_not_finished_by_its_own_status_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture, status: str
) -> None:
    # A resumed run stopped at 1,500 of 3,000: its last evaluation is past the launch budget
    # (1,000), which is what the old reader compared against.
    write_sweep(tmp_path / "s", {"dqn": [1.0, 2.0]})
    write_run(tmp_path / "s" / "resumed", 9.0, seed=5, steps=(1000, 1500), total_timesteps=3000,
              status=status)  # fmt: skip
    (result,) = cmp.compare([tmp_path / "s"], tmp_path / "out", reps=REPS)
    assert sorted(run.seed for run in result.runs["dqn"]) == [0, 1]
    (line,) = capsys.readouterr().err.strip().splitlines()
    # "running" without a live lock holder: its process died, so it reads as interrupted.
    shown = "interrupted" if status == "running" else status
    assert f"resumed: {shown} at step 1,500 of 3,000" in line


def test_a_finished_status_without_model_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_sweep(tmp_path / "s", {"dqn": [1.0]})
    write_run(tmp_path / "s" / "lost", 1.0, seed=3).joinpath("model.zip").unlink()
    cmp.compare([tmp_path / "s"], tmp_path / "out", reps=REPS)
    assert "lost: finished but has no model.zip" in capsys.readouterr().err


def test_a_run_from_before_status_json_counts_when_complete(tmp_path: Path) -> None:
    run = write_run(tmp_path / "legacy", 3.0, status=None)
    (result,) = cmp.compare([run], tmp_path / "out", reps=REPS)
    assert result.runs["dqn"][0].final("mean_reward") == 3.0


def test_a_non_finite_final_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_sweep(tmp_path / "s", {"dqn": [1.0, 2.0]})
    write_run(tmp_path / "s" / "diverged", [1.0, float("nan")], seed=9)
    (result,) = cmp.compare([tmp_path / "s"], tmp_path / "out", reps=REPS)
    assert len(result.runs["dqn"]) == 2
    assert "diverged: its final mean_reward is nan" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--reps", "0"], "--reps must be in 1..1000000, got 0"),
        (["--reps", "-5"], "--reps must be in 1..1000000, got -5"),
        (["--reps", "many"], "argument --reps: invalid int value: 'many'"),
        (["--reps", "1e12"], "argument --reps: invalid int value: '1e12'"),
        (["--seed", "-1"], "--seed must be in 0..4294967295, got -1"),
        (["--seed", str(2**32)], "--seed must be in 0..4294967295, got 4294967296"),
        (["--min-runs", "1"], "--min-runs must be in 2.."),
        (["--min-runs", "0"], "(a bootstrap of 1 run has no width), got 0"),
        (["--min-runs", ""], "argument --min-runs: invalid int value: ''"),
        (["--by", ""], "--by is empty: give a name"),
        (["--metric", " "], "--metric is empty: give a name"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--out", ""], "--out is empty: give a name"),
        (["--out"], "argument --out: expected one argument"),
        ([""], "an empty DIR was given"),
    ],
)
def test_bad_values_are_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture, options: list[str], message: str
) -> None:
    run = write_run(tmp_path / "r", 1.0)
    assert cmp.main([str(run), *options]) == 1
    assert message in one_error_line(capsys)
    assert not (run / "comparison.md").exists()


def test_out_in_the_way_is_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = write_run(tmp_path / "r", 1.0)
    (tmp_path / "file").write_text("")
    (tmp_path / "taken" / "comparison.md").mkdir(parents=True)
    cases = {
        tmp_path / "file": "is a file, not a directory",
        tmp_path / "file" / "under": "file is a file, not a directory",
        tmp_path / "taken": "taken/comparison.md is a directory",
    }
    for out, message in cases.items():
        assert cmp.main([str(run), "--out", str(out), "--reps", str(REPS)]) == 1
        line = one_error_line(capsys)
        assert line.startswith(f"error: --out {out}: ") and message in line


def test_out_without_permission_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = write_run(tmp_path / "r", 1.0)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.getuid() == 0:  # root writes through mode bits: refuse as the kernel would for others
        access = os.access
        monkeypatch.setattr(
            os, "access", lambda path, mode: Path(path) != locked and access(path, mode)
        )
    out = locked / "report"
    assert cmp.main([str(run), "--out", str(out), "--reps", str(REPS)]) == 1
    line = one_error_line(capsys)
    assert line == f"error: --out {out}: permission denied: cannot write in {locked}"
    assert list(locked.iterdir()) == []


def test_non_ascii_and_spaces_in_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = write_sweep(tmp_path / "Läufe mit | Strich", {"dqn": [1.0, 2.0, 3.0]})
    out = tmp_path / "Bericht März"
    assert cmp.main([str(sweep), "--out", str(out), "--reps", str(REPS)]) == 0
    table = (out / "comparison.md").read_text(encoding="utf-8")
    assert "Läufe mit \\| Strich/0_cartpole_dqn_seed0 |" in table
    assert (out / "learning_curves.png").is_file()
    assert (
        capsys.readouterr().out
        == f"wrote {out / 'comparison.md'} and {out / 'learning_curves.png'}\n"
    )


def test_many_runs_get_progress_lines_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep = write_sweep(tmp_path / "s", {"dqn": [float(i) for i in range(cmp.PROGRESS_DIRS)]})
    assert cmp.main([str(sweep), "--out", str(tmp_path / "out"), "--reps", "500"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"compare: reading {cmp.PROGRESS_DIRS} dirs",
        f"compare: read {cmp.PROGRESS_DIRS} runs (0 dirs skipped or counted twice)",
    ]
    assert captured.out.startswith("wrote ")


def test_much_bootstrapping_gets_progress_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = write_sweep(tmp_path / "s", {"a": [1.0, 2.0], "b": [3.0, 4.0]})
    # 2 groups x (IQM/mean + curve) + 1 pair = 5 estimates of REPS replications each.
    monkeypatch.setattr(cmp, "PROGRESS_REPLICATIONS", 5 * REPS)
    cmp.compare([sweep], tmp_path / "out", reps=REPS)
    assert capsys.readouterr().err.splitlines() == [
        f"compare: bootstrapping 2 groups in 1 sections ({REPS} reps)",
        "compare: [1/1] cartpole, 1,000 steps: 2 groups",
        "compare: drawing the learning curves",
    ]
    monkeypatch.setattr(cmp, "PROGRESS_REPLICATIONS", 5 * REPS + 1)
    cmp.compare([sweep], tmp_path / "out", reps=REPS)
    assert capsys.readouterr().err == ""


def test_python_O_cannot_change_a_check() -> None:
    # python -O strips assert statements: no check of compare's may be one. (Run under -O as a
    # subprocess instead, this costs 20 s: the test env sets PYTHONDONTWRITEBYTECODE.)
    tree = ast.parse(Path(cmp.__file__).read_text())
    assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
