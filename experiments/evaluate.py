"""``python -m experiments.evaluate RUN_DIR``: play whole games with a run's agent, print scores.

Loads the run's config and the run's own class (a softmax run stays softmax), builds the
run's evaluation env (whole games, raw scores) and plays ``--episodes`` games greedily, or
epsilon-greedily with ``--epsilon``. Prints mean, std, min, max and a histogram of the scores;
``--gif`` writes the best game. Works on a run copied from another machine: ``--device``
(default ``auto``) picks where the weights go, whatever device trained them.

    python -m experiments.evaluate RUN_DIR [--episodes N] [--epsilon E] [--gif PATH]
        [--checkpoint final|latest] [--device auto|cpu|cuda] [--seed S]

``final`` (the default when the run finished) is ``RUN_DIR/model.zip``; ``latest`` is the
newest checkpoint, for a run still training or stopped. A bad input is one line, exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig

from custom.evaluation import play_games, rgb_frames_problem, save_gif
from experiments.checkpoints import MODEL, load_config, load_model, read_state
from experiments.cli import one_line_errors
from experiments.config import check_device
from experiments.envs import make_env
from experiments.errors import ConfigError, OneLineParser
from experiments.run_dir import RunDir


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m experiments.evaluate",
        description="Play whole games with a run's agent and print the scores.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run dir that run.py wrote")
    parser.add_argument("--episodes", type=int, default=None, help="games (default eval.episodes)")
    parser.add_argument("--epsilon", type=float, default=0.0, help="random-action probability")
    parser.add_argument("--gif", type=Path, default=None, help="write the best game here")
    parser.add_argument(
        "--checkpoint",
        choices=("final", "latest"),
        default=None,
        help="final: RUN_DIR/model.zip (default when present); latest: the newest checkpoint",
    )
    parser.add_argument("--device", default="auto", help="where the network runs (auto, cpu...)")
    parser.add_argument("--seed", type=int, default=None, help="env seed (default: the run's)")
    return parser


def _model_and_config(run_dir: Path, which: str | None) -> tuple[Path, DictConfig]:
    """The model file to load and the config it was trained with (one line when absent)."""
    subject = str(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(subject, "no such directory" if not run_dir.exists() else "not a dir")
    run = RunDir(run_dir)
    final = run.model_path
    checkpoint = run.latest_checkpoint()
    if which is None:
        which = "final" if final.is_file() else "latest"
    if which == "final" and not final.is_file():
        hint = "; use --checkpoint latest" if checkpoint else ""
        raise ConfigError(subject, f"has no model.zip (the run did not finish){hint}")
    if which == "latest":
        if checkpoint is None:
            raise ConfigError(
                subject, "has no checkpoint and no model.zip: not a run dir, or empty"
            )
        read_state(checkpoint)
        return checkpoint / MODEL, load_config(checkpoint)
    return final, run.config()


def _check_gif_path(path: Path, cfg: DictConfig) -> None:
    """``--gif PATH`` can be written and the env can film its games: one line before any game."""
    subject = f"--gif {path}"
    folder = path.expanduser().parent
    if path.is_dir():
        raise ConfigError(subject, "is a directory; give a file name ending in .gif")
    if not folder.is_dir():
        raise ConfigError(subject, f"{folder} is not an existing directory")
    if not os.access(folder, os.W_OK):
        raise ConfigError(subject, f"permission denied: cannot write in {folder}")
    problem = rgb_frames_problem(lambda: make_env(cfg, training=False))
    if problem is not None:
        raise ConfigError(subject, f"this env cannot film its games: {problem}")


def histogram(scores: np.ndarray, bins: int = 10, width: int = 40) -> list[str]:
    """Text histogram lines of ``scores``: range, count and a bar."""
    counts, edges = np.histogram(scores, bins=min(bins, max(len(np.unique(scores)), 1)))
    top = max(int(counts.max()), 1)
    return [
        f"  [{low:10.2f}, {high:10.2f}) {count:5d} {'#' * round(width * count / top)}"
        for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def evaluate(args: argparse.Namespace) -> np.ndarray:
    """Load the run's agent and play the games; print the summary; return the scores."""
    if args.episodes is not None and args.episodes < 1:
        raise ConfigError(f"--episodes={args.episodes}", "must be > 0")
    if not 0.0 <= args.epsilon <= 1.0:
        raise ConfigError(f"--epsilon={args.epsilon}", "must be in [0, 1]")
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"--seed={args.seed}", "must be >= 0")
    check_device(args.device)
    run_dir = Path(args.run_dir).expanduser()
    model_path, cfg = _model_and_config(run_dir, args.checkpoint)
    if args.gif is not None:
        _check_gif_path(args.gif, cfg)
    if args.seed is not None:
        cfg.seed = args.seed
    if cfg.get("torch_threads"):
        torch.set_num_threads(cfg.torch_threads)
    episodes = args.episodes or int(cfg.eval.final_episodes or cfg.eval.episodes)
    env = make_env(cfg, training=False)
    try:
        model = load_model(cfg, model_path, env, args.device)
        try:
            results = play_games(
                model, env, n_games=episodes, epsilon=args.epsilon, record_best=args.gif is not None
            )
        except gym.error.DependencyNotInstalled as error:
            raise ConfigError(
                f"--gif {args.gif}", f"this env cannot render here: {error}"
            ) from None
    finally:
        env.close()
    scores = results.scores
    print(
        f"{cfg.env.name} {cfg.algo.name} {model_path} (step {model.num_timesteps}), "
        f"{len(scores)} games, epsilon {args.epsilon}:"
    )
    print(
        f"mean {scores.mean():.3f}  std {scores.std():.3f}  min {scores.min():g}  "
        f"max {scores.max():g}  truncated {results.truncated}"
    )
    print("\n".join(histogram(scores)))
    if args.gif is not None and results.best_frames:
        print(f"best game ({scores.max():g}): {save_gif(results.best_frames, args.gif)}")
    return scores


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    with one_line_errors():
        evaluate(_parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
