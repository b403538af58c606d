"""SB3 callbacks that make a run stoppable and restartable: periodic checkpoints, clean stops.

What a checkpoint holds and where it goes is the caller's business (``experiments/
checkpoints.py``); these callbacks only decide *when*: every ``freq`` env steps, and when a
SIGINT or SIGTERM asks training to stop. A callback's ``_on_step`` returning False is SB3's
own way to end ``learn()`` cleanly, between two env steps, so the stop never cuts a gradient
step or a file write in half.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from custom.callbacks import EveryNSteps

#: Exit status of a process ended by a signal, as shells report it.
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class PeriodicCheckpoint(BaseCallback):
    """Call ``save(model)`` at every multiple of ``freq`` env steps (0: never).

    The schedule is aligned to multiples of ``freq``, so a resumed run keeps writing at the
    same steps as the interrupted one.

    :param freq: env steps between checkpoints
    :param save: writes one checkpoint of the model as it is now
    """

    def __init__(self, freq: int, save: Callable[[BaseAlgorithm], object], verbose: int = 0):
        super().__init__(verbose)
        self.every = EveryNSteps(freq)
        self.save = save

    def _on_training_start(self) -> None:
        self.every.restart(self.num_timesteps)

    def _on_step(self) -> bool:
        if self.every.due(self.num_timesteps):
            self.save(self.model)
        return True


class StopOnSignal(BaseCallback):
    """Ends ``learn()`` after the current env step once SIGINT or SIGTERM arrived.

    Use :meth:`handling_signals` around ``learn()`` (and the checkpoint written after it). The
    first signal only sets :attr:`signum`; training stops at the next step and the caller saves.
    A second signal raises ``KeyboardInterrupt`` at once: files written atomically are then
    either whole or absent, never half-written. Handlers are installed only in the main thread
    (Python's rule); elsewhere, e.g. under a thread-based launcher, signals keep their defaults.

    :param message: printed to stderr on the first signal (what happens next)
    """

    def __init__(self, message: str = "stopping after this step...", verbose: int = 0):
        super().__init__(verbose)
        self.message = message
        #: the signal that asked to stop, None while none did
        self.signum: int | None = None

    def _on_step(self) -> bool:
        return self.signum is None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: {self.message}", file=sys.stderr, flush=True)

    @contextmanager
    def handling_signals(self) -> Iterator[None]:
        """Route SIGINT and SIGTERM to this callback inside the block; restore the old ones."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in EXIT_CODES}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @property
    def exit_code(self) -> int:
        """130 after SIGINT, 143 after SIGTERM (0 when no signal arrived)."""
        return EXIT_CODES[signal.Signals(self.signum)] if self.signum is not None else 0
