"""Full-game evaluation on SB3's ``evaluate_policy``: epsilon-greedy play, truncations, best game.

SB3's ``evaluate_policy`` counts a game only when the Monitor innermost in the env reports one
(``info["episode"]``), so a training-style env that ends learning episodes on life loss, presses
FIRE on each reset and clips rewards still yields raw whole-game scores. This module adds what
it leaves to its ``callback`` hook: counting the games cut by a time limit, progress (a bar on a
terminal, log lines otherwise), the frames of the best game, and a stop between two env steps.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import PolicyPredictor
from stable_baselines3.common.vec_env import VecEnv
from tqdm import TqdmExperimentalWarning
from tqdm.rich import tqdm

log = logging.getLogger(__name__)

#: What rendering a frame raises when a renderer is missing or broken (pygame absent: gymnasium's
#: DependencyNotInstalled; a None frame: our RuntimeError; pygame's own error is a RuntimeError).
RENDER_ERRORS = (gym.error.Error, ImportError, RuntimeError, OSError)


@dataclass
class GameResults:
    """Outcome of :func:`play_games`.

    :param scores: raw full-game return of each game, in SB3's ``evaluate_policy`` order
    :param lengths: env steps of each game as the Monitor counts them: steps of the raw env,
        so frames where a wrapper skips frames (SB3's AtariWrapper on a frameskip-1 ALE)
    :param truncated: how many games a time limit cut (``info["TimeLimit.truncated"]`` where the
        game ends; a cut on the very step that SB3's EpisodicLifeEnv turns into a life-loss
        terminal reads as a terminal)
    :param wall_time_s: seconds the evaluation took
    :param best_frames: RGB frames of the highest-scoring game (the first one on ties), one after
        each agent step but the last (the VecEnv has reset by then); None when not recorded
    :param render_error: why frames could not be recorded (the scores are whole all the same);
        None when they were, or were not asked for
    """

    scores: np.ndarray
    lengths: np.ndarray
    truncated: int
    wall_time_s: float
    best_frames: list[np.ndarray] | None = None
    render_error: str | None = None


class EvaluationStopped(Exception):
    """``should_stop`` turned true during :func:`play_games`: the games so far are no result.

    A partial evaluation favours short games (they finish first), so its scores are dropped
    rather than reported.

    :param games_done: complete games when the stop came
    :param n_games: games the evaluation was to play
    """

    def __init__(self, games_done: int, n_games: int) -> None:
        super().__init__(f"evaluation stopped after {games_done} of {n_games} games")
        self.games_done = games_done
        self.n_games = n_games


class EpsilonGreedy:
    """An SB3 predictor that replaces the model's action by a uniform one with probability epsilon.

    :param model: anything with SB3's ``predict``
    :param action_space: the Discrete action space to draw random actions from
    :param epsilon: probability of a random action, per env and step
    :param seed: seed of the draws, so that an evaluation can be repeated
    """

    def __init__(
        self,
        model: PolicyPredictor,
        action_space: spaces.Discrete,
        epsilon: float,
        seed: int | None = None,
    ) -> None:
        self.model = model
        self.n_actions = int(action_space.n)
        self.epsilon = epsilon
        self.rng = np.random.default_rng(seed)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        actions, state = self.model.predict(
            observation, state=state, episode_start=episode_start, deterministic=deterministic
        )
        explore = self.rng.random(len(actions)) < self.epsilon
        random_actions = self.rng.integers(self.n_actions, size=len(actions))
        return np.where(explore, random_actions, actions), state


class Progress(Protocol):
    """What :class:`GameTracker` needs of a progress bar (tqdm's ``update``)."""

    def update(self, n: float | None = 1) -> bool | None: ...


class GameTracker:
    """``evaluate_policy``'s callback: counts truncated games, shows progress, films the best game.

    ``evaluate_policy`` calls it once per env after each step, only while that env still owes
    games, before it counts the game that the step may end; a game ends where the Monitor's
    ``info["episode"]`` appears, as ``evaluate_policy`` itself decides. ``evaluate_policy`` has
    no way to stop early but an exception from its callback, so a stop raises
    :class:`EvaluationStopped` from here.

    A frame that cannot be rendered ends the filming, not the evaluation: the reason is kept in
    :attr:`render_error` and the scores stay whole.

    :param n_envs: number of envs in the VecEnv
    :param n_games: games the evaluation plays (for the stop's message)
    :param record_best: keep the frames of the best game (the env must render RGB frames)
    :param progress: a bar to advance by one per game, or None
    :param should_stop: asked after every env step; True ends the evaluation
    """

    def __init__(
        self,
        n_envs: int,
        n_games: int = 0,
        record_best: bool = False,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.n_games = n_games
        self.record_best = record_best
        self.progress = progress
        self.should_stop = should_stop
        self.games_done = 0
        self.truncated = 0
        self.best_score = -np.inf
        self.best_frames: list[np.ndarray] | None = None
        self.render_error: str | None = None
        self._frames: list[list[np.ndarray]] = [[] for _ in range(n_envs)]

    def __call__(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        if self.should_stop is not None and self.should_stop():
            raise EvaluationStopped(self.games_done, self.n_games)
        index, info = int(locals_["i"]), locals_["info"]
        image = self._film(locals_["env"], index) if self.record_best else None
        episode = info.get("episode") if locals_["done"] else None
        if episode is None:
            if image is not None:
                self._frames[index].append(image)
            return
        self.games_done += 1
        self.truncated += bool(info.get("TimeLimit.truncated", False))
        if self.progress is not None:
            self.progress.update(1)
        if image is not None:
            if float(episode["r"]) > self.best_score:
                self.best_score, self.best_frames = float(episode["r"]), self._frames[index]
            # The image already shows the next game (the VecEnv reset this env); dropping it
            # gives every game the same frames: one after each step but its last.
            self._frames[index] = []

    def _film(self, env: VecEnv, index: int) -> np.ndarray | None:
        """The frame of env ``index``, or None (and filming off) once rendering failed."""
        try:
            return _rgb_image(env, index)
        except RENDER_ERRORS as error:
            self.render_error = _one_line(error)
            self.record_best = False
            self.best_frames = None
            self._frames = [[] for _ in self._frames]
            return None


class ProgressLines:
    """Progress as log lines, for a console that is a file (a batch job's log).

    A bar redrawn in place is noise in a file, so a line is logged instead, at most every
    ``interval_s`` seconds and only when a game ends: a short evaluation logs nothing, a long one
    shows that it is alive and how far it got.

    :param total: number of games
    :param label: what the line starts with, e.g. ``eval at 50000``
    :param interval_s: least seconds between two lines (and before the first)
    :param clock: seconds, monotonic (a test passes its own)
    """

    def __init__(
        self,
        total: int,
        label: str,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.interval_s = interval_s
        self.clock = clock
        self.done = 0
        self._start = self._last = clock()

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Nothing to close: the lines are written as they come."""

    def update(self, n: float | None = 1) -> None:
        self.done += int(n or 0)
        now = self.clock()
        if now - self._last >= self.interval_s and self.done < self.total:
            self._last = now
            log.info(f"{self.label}: {self.done}/{self.total} games, {now - self._start:.0f} s")


def progress_bar(total: int, enabled: bool) -> tqdm:
    """A games-done bar (rich, like SB3's training bar, under which it nests), or a silent one.

    It is shown only on a terminal: tqdm.rich turns ``disable=None`` into "always on", so the
    check is made here, and logs of batch jobs get no bar lines.

    :param total: number of games
    :param enabled: whether the caller wants a bar at all
    """
    disable = not (enabled and sys.stdout.isatty())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmExperimentalWarning)
        return tqdm(total=total, desc="evaluation", unit="game", disable=disable, leave=False)


def progress_display(total: int, enabled: bool, label: str) -> tqdm | ProgressLines:
    """A bar on a terminal, log lines when stdout is a file, a silent bar when not ``enabled``."""
    if enabled and not sys.stdout.isatty():
        return ProgressLines(total, label)
    return progress_bar(total, enabled)


def play_games(
    model: PolicyPredictor,
    env: VecEnv,
    n_games: int,
    epsilon: float = 0.0,
    record_best: bool = False,
    seed: int | None = None,
    progress: bool = False,
    should_stop: Callable[[], bool] | None = None,
    label: str = "evaluation",
) -> GameResults:
    """Play exactly ``n_games`` complete games with SB3's ``evaluate_policy``, epsilon-greedy.

    Scores and lengths come from SB3's Monitor (``info["episode"]``), which ``make_vec_env``
    puts innermost, so life-loss terminals, penalties and clipping of the env never show in a
    score. Env ``i`` of ``n`` plays ``(n_games + i) // n`` of the games, as ``evaluate_policy``
    divides them, so that envs that finish short games first do not supply most of the results.

    The games end only if the env ends them: Atari envs must launch each ball themselves (FIRE
    on reset and after a life loss) and cut games at a frame cap, or a policy that never fires
    stalls a game.

    :param model: anything with SB3's ``predict`` (an algorithm or a policy); it acts greedily
    :param env: a Monitor-wrapped VecEnv; it is reset first
    :param n_games: number of complete games to play
    :param epsilon: probability of a uniformly random action at each step (Discrete actions); 0
        plays greedily
    :param record_best: keep the RGB frames of the best game (needs ``render_mode="rgb_array"``,
        the default of ``make_vec_env``; raw 210x160 frames on Atari); a frame that cannot be
        rendered stops the filming, not the games (``render_error`` says why)
    :param seed: seed of the epsilon draws
    :param progress: show games done: a bar on a terminal, a log line now and then otherwise
    :param should_stop: asked after every env step; when it returns True the evaluation ends
        there (a signal asked the run to stop: a long evaluation must not outlast its grace
        period)
    :param label: names the evaluation in progress lines
    :return: scores, lengths, the count of truncated games, the wall time and, with
        ``record_best``, the best game's frames
    :raises EvaluationStopped: ``should_stop`` returned True before the last game ended
    """
    _check_arguments(env, n_games, epsilon, record_best)
    predictor: PolicyPredictor = model
    if epsilon > 0:
        assert isinstance(env.action_space, spaces.Discrete)
        predictor = EpsilonGreedy(model, env.action_space, epsilon, seed)
    start = time.perf_counter()
    with progress_display(n_games, progress, label) as bar:
        tracker = GameTracker(env.num_envs, n_games, record_best, bar, should_stop)
        scores, lengths = evaluate_policy(
            predictor,
            env,
            n_eval_episodes=n_games,
            deterministic=True,
            callback=tracker,
            return_episode_rewards=True,
        )
    return GameResults(
        scores=np.asarray(scores, dtype=np.float64),
        lengths=np.asarray(lengths, dtype=np.int64),
        truncated=tracker.truncated,
        wall_time_s=time.perf_counter() - start,
        best_frames=tracker.best_frames,
        render_error=tracker.render_error,
    )


def _check_arguments(env: VecEnv, n_games: int, epsilon: float, record_best: bool) -> None:
    """Refuse what would give wrong scores silently, rather than SB3's mere warning."""
    if n_games < 1:
        raise ValueError(f"n_games must be >= 1, got {n_games}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if not all(env.env_is_wrapped(Monitor)):
        raise ValueError(
            "play_games reads scores from SB3's Monitor: build the env with make_vec_env"
        )
    if epsilon > 0 and not isinstance(env.action_space, spaces.Discrete):
        raise ValueError(f"epsilon-greedy needs a Discrete action space, got {env.action_space}")
    if record_best and env.render_mode != "rgb_array":
        raise ValueError(
            f"record_best needs render_mode='rgb_array', the env has {env.render_mode!r}"
        )


def _rgb_image(env: VecEnv, index: int) -> np.ndarray:
    """The current RGB frame of one sub-env (``evaluate_policy`` visits the envs one by one)."""
    image = env.env_method("render", indices=index)[0]
    if image is None:
        raise RuntimeError("the env rendered no RGB frame: it needs render_mode='rgb_array'")
    return np.asarray(image)


def _one_line(error: BaseException) -> str:
    """The first non-blank line of an error's message, or its type's name when it has none."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def rgb_frames_problem(make_env: Callable[[], VecEnv]) -> str | None:
    """Why a GIF of this env's games cannot be made, in one line; None when it can.

    Checked before training, because rendering is first needed at the first evaluation: a
    missing renderer (CartPole without pygame) would otherwise show up after hours of training.
    One frame of a fresh env is rendered, the way :func:`play_games` films, and the env closed.

    :param make_env: builds an evaluation env (a new one: the run's own is not reset here, so
        its seeded games stay as they are)
    """
    env = make_env()
    try:
        if env.render_mode != "rgb_array":
            return f"the env renders {env.render_mode!r}, not RGB frames ('rgb_array')"
        env.reset()
        _rgb_image(env, 0)
    except RENDER_ERRORS as error:
        return _one_line(error)
    finally:
        env.close()
    return None


def save_gif(
    frames: Sequence[np.ndarray], path: str | Path, fps: float = 30.0, scale: int = 1
) -> Path:
    """Write RGB frames to an animated GIF that loops forever.

    Identical consecutive frames may be merged into one longer frame by the GIF encoder.

    :param frames: (H, W, 3) uint8 frames
    :param path: file to write (parent folders are created)
    :param fps: frames per second
    :param scale: integer upscaling by pixel repetition (the reference doubles Breakout's frames)
    :return: the path written
    """
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    video = np.stack(frames)
    if scale > 1:
        video = video.repeat(scale, axis=1).repeat(scale, axis=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, video, extension=".gif", duration=1000.0 / fps, loop=0)
    return path
