"""SB3 callbacks: periodic full-game evaluation, training statistics per life and action, and a
log of every training game.

They write through SB3's logger only, so they need no tracking library: arrays become
histograms and a ``.gif`` path becomes a video wherever the logger's outputs can show them
(``experiments/tracking.py`` for W&B), and are kept out of the CSV and console outputs.
"""

from __future__ import annotations

import csv
import logging
import math
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback
from stable_baselines3.common.vec_env import VecEnv
from tqdm import TqdmExperimentalWarning
from tqdm.rich import tqdm as tqdm_rich

from custom.evaluation import EvaluationStopped, GameResults, play_games, save_gif

log = logging.getLogger(__name__)

EVALUATION_FIELDS = (
    "timesteps",
    "episodes",
    "mean_reward",
    "std_reward",
    "mean_ep_length",
    "truncated",
    "wall_time_s",
    "scores",
)
GAME_FIELDS = ("timesteps", "score", "length")
#: Outputs that cannot show arrays or media: SB3's names for console, text, JSON and CSV.
MEDIA_EXCLUDED = ("stdout", "log", "json", "csv")


class EveryNSteps:
    """Fires once per ``freq`` env steps; one call may cover several steps (``n_envs`` > 1).

    :param freq: env steps between firings; 0 never fires.
    """

    def __init__(self, freq: int) -> None:
        self.freq = freq
        self._next = freq

    def restart(self, num_timesteps: int) -> None:
        """Fire next at the first multiple of ``freq`` after ``num_timesteps``.

        A resumed run thus keeps its original schedule (10k, 20k, ... whatever step it
        stopped at); a fresh one starts at ``freq``.
        """
        if self.freq > 0:
            self._next = (num_timesteps // self.freq + 1) * self.freq

    def due(self, num_timesteps: int) -> bool:
        """True when a firing point was passed since the last True, each point at most once."""
        if self.freq <= 0 or num_timesteps < self._next:
            return False
        while self._next <= num_timesteps:
            self._next += self.freq
        return True


class PeriodicEvaluation(BaseCallback):
    """Play whole games every ``freq`` env steps and once more when training ends.

    Each evaluation logs ``eval/mean_reward``, ``eval/std_reward``, ``eval/var_reward``,
    ``eval/mean_ep_length``, ``eval/truncated_games``, ``eval/wall_time_s`` and a histogram
    ``eval/scores`` (dumped at ``num_timesteps``), and appends a row with every game's score to
    ``csv_path``. Scores come from the Monitor innermost in ``eval_env``: raw returns of whole
    games, whatever the training wrappers do. Wall time and game length are logged so that a slow
    or stalled evaluation shows at once; games cut by a time limit are counted beside the scores.

    An evaluation that ``should_stop`` cuts short (a signal: a long evaluation must not outlast a
    scheduler's grace period) logs a warning and records nothing: a partial evaluation favours
    short games, so it is no result. :attr:`final_done` tells whether the evaluation at the end
    of training was played in full. The GIF is an extra: a frame that cannot be rendered or a
    file that cannot be written is a warning, and the run goes on without it.

    :param eval_env: env to play on, separate from the training env.
    :param csv_path: where the evaluations table is written (created with a header).
    :param freq: env steps between evaluations; 0 evaluates only at the end.
    :param episodes: games per periodic evaluation.
    :param final_episodes: games of the evaluation at the end (default ``episodes``), so the
        figure that is reported can be precise while the periodic ones stay cheap.
    :param epsilon: probability of a random action at each step; 0 plays greedily.
    :param gif_path: where to save the best game so far as a GIF (logged as
        ``eval/best_game``); None records no frames.
    :param progress_bar: show games done during each evaluation: a bar on a terminal, a log line
        now and then when stdout is a file.
    :param should_stop: asked between env steps of an evaluation; True cuts it short (e.g.
        ``lambda: stop.signum is not None`` with :class:`custom.checkpointing.StopOnSignal`).
    :param verbose: SB3's verbosity. Each evaluation's one-line summary goes to this module's
        logger at INFO whatever it is: ``run.py`` shows it on the console and in ``run.log``,
        a plain script after ``logging.basicConfig(level=logging.INFO)``.
    """

    def __init__(
        self,
        eval_env: VecEnv,
        csv_path: Path,
        freq: int,
        episodes: int,
        final_episodes: int | None = None,
        epsilon: float = 0.0,
        gif_path: Path | None = None,
        progress_bar: bool = False,
        should_stop: Callable[[], bool] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.eval_env = eval_env
        self.csv_path = Path(csv_path)
        self.every = EveryNSteps(freq)
        self.episodes = episodes
        self.final_episodes = final_episodes or episodes
        self.epsilon = epsilon
        self.gif_path = gif_path
        self.progress_bar = progress_bar
        self.should_stop = should_stop
        self._last_eval: tuple[int, int] | None = None
        self._best_score = -np.inf
        self.last_scores: np.ndarray | None = None
        #: whether the evaluation at the end of training was played to its last game
        self.final_done = False

    def _on_training_start(self) -> None:
        self.every.restart(self.num_timesteps)
        if not self.csv_path.exists():
            with self.csv_path.open("w", newline="") as file:
                csv.writer(file).writerow(EVALUATION_FIELDS)

    def _on_step(self) -> bool:
        if self.every.due(self.num_timesteps):
            self.evaluate(self.episodes)
        return True

    def _on_training_end(self) -> None:
        # A run stopped before its budget (Ctrl-C, SIGTERM, a NaN) is not at its end: the
        # final evaluation would only delay the stop, and runs once the run is resumed.
        if self.num_timesteps < self.model._total_timesteps:
            return
        if self._last_eval != (self.num_timesteps, self.final_episodes):
            # Said before it starts: after training the console is otherwise silent for as long
            # as the games take.
            log.info(f"eval at {self.num_timesteps}: final evaluation, {self.final_episodes} games")
            self.evaluate(self.final_episodes)
        self.final_done = self._last_eval == (self.num_timesteps, self.final_episodes)

    def evaluate(self, episodes: int) -> np.ndarray | None:
        """Play ``episodes`` games now, log and record them; return their scores.

        :return: the scores, or None when ``should_stop`` cut the evaluation (nothing recorded)
        """
        label = f"eval at {self.num_timesteps}"
        if self.should_stop is not None and self.should_stop():
            log.warning(f"{label}: skipped, the run is stopping; not recorded")
            return None
        try:
            results = play_games(
                self.model,
                self.eval_env,
                n_games=episodes,
                epsilon=self.epsilon,
                record_best=self.gif_path is not None,
                seed=self.num_timesteps,
                progress=self.progress_bar,
                should_stop=self.should_stop,
                label=label,
            )
        except EvaluationStopped as stopped:
            log.warning(
                f"{label}: cut after {stopped.games_done} of {episodes} games by a stop; "
                "not recorded"
            )
            return None
        self._log(results)
        self._save_best_game(results)
        self.logger.dump(self.num_timesteps)
        self._write_row(results)
        self._last_eval = (self.num_timesteps, episodes)
        self.last_scores = results.scores
        log.info(summary(self.num_timesteps, results))
        return results.scores

    def _log(self, results: GameResults) -> None:
        scores = results.scores
        self.logger.record("eval/mean_reward", float(scores.mean()))
        self.logger.record("eval/std_reward", float(scores.std()))
        self.logger.record("eval/var_reward", float(scores.var()))
        self.logger.record("eval/mean_ep_length", float(results.lengths.mean()))
        self.logger.record("eval/truncated_games", results.truncated)
        self.logger.record("eval/wall_time_s", results.wall_time_s)
        self.logger.record("eval/scores", scores, exclude=MEDIA_EXCLUDED)

    def _save_best_game(self, results: GameResults) -> None:
        """Keep the GIF of the best game over all evaluations so far.

        A GIF that cannot be made is a warning and no more GIFs are tried: it is never worth a
        run (the renderer is best checked before training, see
        :func:`custom.evaluation.rgb_frames_problem`).
        """
        if self.gif_path is None:
            return
        if results.render_error is not None:
            self._give_up_gif(f"its frames cannot be rendered: {results.render_error}")
            return
        if not results.best_frames or results.scores.max() < self._best_score:
            return
        try:
            save_gif(results.best_frames, self.gif_path)
        except OSError as error:
            self._give_up_gif(f"it cannot be written: {error}")
            return
        self._best_score = float(results.scores.max())
        self.logger.record("eval/best_game", self.gif_path, exclude=MEDIA_EXCLUDED)

    def _give_up_gif(self, reason: str) -> None:
        log.warning(f"no GIF of the best game ({self.gif_path}): {reason}; training goes on")
        self.gif_path = None

    def _write_row(self, results: GameResults) -> None:
        scores = results.scores
        row = (
            self.num_timesteps,
            len(scores),
            float(scores.mean()),
            float(scores.std()),
            float(results.lengths.mean()),
            results.truncated,
            round(results.wall_time_s, 3),
            " ".join(f"{s:g}" for s in scores),
        )
        with self.csv_path.open("a", newline="") as file:
            csv.writer(file).writerow(row)


def summary(num_timesteps: int, results: GameResults) -> str:
    """One console line per evaluation: score, game length, truncations and wall time."""
    scores = results.scores
    return (
        f"eval at {num_timesteps}: {scores.mean():.2f} +/- {scores.std():.2f} over "
        f"{len(scores)} games, mean length {results.lengths.mean():.0f} steps, "
        f"{results.truncated} truncated, {results.wall_time_s:.1f} s"
    )


class ProgressBar(ProgressBarCallback):
    """SB3's progress bar (tqdm with rich), redrawn ``refresh_per_second`` times a second.

    rich redraws its bar 10 times a second by default, in a thread that renders in Python
    (holding the GIL) and writes escape codes that W&B's console capture forwards to its
    service: a measurable share of a CartPole run's env steps per second
    (docs/benchmarks/figures.md). Twice a second is as readable.

    :param refresh_per_second: redraws per second, of rich's display and of tqdm's count
    """

    def __init__(self, refresh_per_second: float = 2.0) -> None:
        super().__init__()
        if refresh_per_second <= 0:
            raise ValueError(f"refresh_per_second must be > 0, got {refresh_per_second}")
        self.refresh_per_second = refresh_per_second

    def _on_training_start(self) -> None:
        with warnings.catch_warnings():  # "rich is experimental": SB3 silences it too
            warnings.simplefilter("ignore", TqdmExperimentalWarning)
            self.pbar = tqdm_rich(
                total=self.locals["total_timesteps"] - self.model.num_timesteps,
                mininterval=1.0 / self.refresh_per_second,
                options={"refresh_per_second": self.refresh_per_second},
            )


class TrainingStats(BaseCallback):
    """Every ``freq`` env steps, log what the learner sees: its episodes and its actions.

    A learning episode ends at every ``done`` of the training env, so with terminal-on-life-loss
    it is one life (``rollout/life_rew_mean``, ``rollout/life_len_mean``, over the last
    ``window`` of them, training rewards with penalties); SB3's ``rollout/ep_rew_mean`` stays the
    whole game's raw score from the Monitor. ``rollout/actions`` is a histogram of the actions
    taken since the last row.

    :param freq: env steps between rows; 0 disables the callback.
    :param window: number of recent learning episodes averaged.
    """

    def __init__(self, freq: int, window: int = 100, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.every = EveryNSteps(freq)
        self._returns: deque[float] = deque(maxlen=window)
        self._lengths: deque[int] = deque(maxlen=window)
        self._actions: list[np.ndarray] = []
        self._running_return = np.zeros(0)
        self._running_length = np.zeros(0, dtype=np.int64)

    def _on_training_start(self) -> None:
        n_envs = self.training_env.num_envs
        self._running_return = np.zeros(n_envs)
        self._running_length = np.zeros(n_envs, dtype=np.int64)
        self.every.restart(self.num_timesteps)

    def _on_step(self) -> bool:
        # Every env step: a few array operations only (reshaping waits for the row).
        if self.every.freq <= 0:
            return True
        self._actions.append(self.locals["actions"])
        self._running_return += self.locals["rewards"]
        self._running_length += 1
        dones = self.locals["dones"]
        if dones.any():
            for env_index in np.flatnonzero(dones):
                self._returns.append(float(self._running_return[env_index]))
                self._lengths.append(int(self._running_length[env_index]))
                self._running_return[env_index] = 0.0
                self._running_length[env_index] = 0
        if self.every.due(self.num_timesteps):
            self._write_row()
        return True

    def _write_row(self) -> None:
        if self._returns:
            self.logger.record("rollout/life_rew_mean", float(np.mean(self._returns)))
            self.logger.record("rollout/life_len_mean", float(np.mean(self._lengths)))
        actions = np.concatenate([np.asarray(a).reshape(-1) for a in self._actions])
        self.logger.record("rollout/actions", actions, exclude=MEDIA_EXCLUDED)
        self._actions.clear()
        self.logger.dump(self.num_timesteps)


class TrainingGames(BaseCallback):
    """Append a row to ``csv_path`` for every training game that ends: the learning curve as
    played, like the ``monitor.csv`` files of rl-zoo's published agents.

    Columns: ``timesteps`` (env steps when the game ended), ``score`` (its raw whole-game
    return) and ``length`` (its steps as the Monitor innermost counts them: frames where a
    wrapper skips frames). Both come from that Monitor's ``info["episode"]``, so a game is a
    whole game whatever the training wrappers do (life-loss terminals, clipped rewards).
    Each row is flushed as it is written: a killed run keeps every game it finished.

    :param csv_path: the table; created with a header, appended to when it exists (a resume).
    """

    def __init__(self, csv_path: Path, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.csv_path = Path(csv_path)

    def _on_training_start(self) -> None:
        if not self.csv_path.exists():
            with self.csv_path.open("w", newline="") as file:
                csv.writer(file).writerow(GAME_FIELDS)

    def _on_step(self) -> bool:
        games = [info["episode"] for info in self.locals["infos"] if "episode" in info]
        if games:
            with self.csv_path.open("a", newline="") as file:
                writer = csv.writer(file)
                for game in games:
                    writer.writerow((self.num_timesteps, f"{game['r']:.10g}", game["l"]))
        return True


#: Logger keys of a diverging value-based learner: TargetDQN's loss and Q-value means.
NON_FINITE_KEYS = ("train/loss", "train/q_mean", "train/target_mean")


class StopOnNonFinite(BaseCallback):
    """Stop training when the last gradient step logged a NaN or infinite loss or Q-value.

    Reads the values the algorithm has just recorded in its logger (plain floats, already on the
    host), so the check adds no device sync. After a non-finite loss the weights are no longer
    finite either, so the last good state is the last checkpoint written before it.

    :param keys: logger keys to check; those absent (another algorithm) are skipped
    """

    def __init__(self, keys: tuple[str, ...] = NON_FINITE_KEYS, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.keys = keys
        #: ``(key, value)`` that stopped training, None while all were finite
        self.bad: tuple[str, float] | None = None

    def _on_step(self) -> bool:
        return self.check()

    def check(self) -> bool:
        """True while every checked value is finite; else remember the first bad one."""
        values = self.logger.name_to_value
        for key in self.keys:
            value = values.get(key)
            if value is not None and not math.isfinite(value):
                self.bad = (key, float(value))
                return False
        return True
