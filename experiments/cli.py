"""``run.py``'s error reporting: whatever the user typed or chose wrong is one line, no traceback.

Hydra composes the config once, as usual, with every flag it knows (``-m``, ``--cfg``,
``--config-name``...). Its own report of a bad override spans many lines (search path, grammar
links), and a task function's error would come with a traceback. :func:`run_reporting_errors`
asks Hydra to re-raise instead (``HYDRA_FULL_ERROR``), and :func:`user_error` turns what a user
can fix into ``error: <key>: <what is wrong and what is allowed>``. Anything else, a bug of
ours, still shows its full traceback; so does everything when the user sets
``HYDRA_FULL_ERROR=1`` themselves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from experiments import sweeps
from experiments.errors import ConfigError, first_line

_FULL_ERROR = "HYDRA_FULL_ERROR"
#: Whether the user asked for tracebacks, remembered for the jobs: HYDRA_FULL_ERROR is forced on.
_TRACEBACKS = "VALUERL_TRACEBACKS"


def _wants_traceback() -> bool:
    return os.environ.get(_TRACEBACKS) == "1"


def run_reporting_errors(main: Callable[[], Any]) -> None:
    """Run a ``@hydra.main`` function; exit with one line for a user's mistake.

    :param main: the decorated Hydra entry point
    """
    os.environ.setdefault(_TRACEBACKS, "1" if os.environ.get(_FULL_ERROR) == "1" else "0")
    os.environ[_FULL_ERROR] = "1"  # Hydra then re-raises rather than printing its own report
    try:
        main()
    except Exception as error:
        # A sweep whose jobs failed: the basic sweeper re-raises the first failure after all
        # jobs ran; the summary has said what failed and why, one line per job.
        failed = sweeps.failure_line()
        if failed is not None and not _wants_traceback():
            sys.exit(f"error: {failed}")
        message = user_error(error)
        if message is None or _wants_traceback():
            raise
        sys.exit(f"error: {message}")
    failed = sweeps.failure_line()  # launchers and sweepers that do not re-raise (Optuna)
    if failed is not None:
        sys.exit(f"error: {failed}")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Inside a task function: a :class:`ConfigError` ends the process with its one line.

    Exiting from inside the job keeps Hydra from logging the failed job's overrides and
    traceback around the line. In a sweep (``-m``) exiting would stop every job after this
    one, so there any failure is raised as :class:`experiments.sweeps.JobFailed` instead:
    Hydra records the job as failed, runs the others, and the sweep's summary names it.
    """
    try:
        yield
    except Exception as error:
        if _wants_traceback():
            raise
        if sweeps.in_multirun():
            raise sweeps.job_failure(error, user_error(error)) from None
        if isinstance(error, ConfigError):
            sys.exit(f"error: {error}")
        raise


def user_error(error: BaseException) -> str | None:
    """One line for an error the user can fix (a bad override or value), else None.

    :param error: what Hydra, OmegaConf or our checks raised
    """
    if isinstance(error, ConfigError):
        return str(error)
    if isinstance(error, MissingConfigException):
        return _missing_config(error)
    if isinstance(error, OverrideParseException):
        return _parse_error(error)
    cause = error.__cause__
    if isinstance(error, ConfigCompositionException) and isinstance(cause, OmegaConfBaseException):
        return _omegaconf_error(cause)
    if isinstance(error, OmegaConfBaseException):
        return _omegaconf_error(error)
    if isinstance(error, HydraException):
        return first_line(str(error))
    if isinstance(error, ValueError) and _raised_in("hydra._internal.utils", error):
        # Hydra's check of its own flags (e.g. `-m --cfg job`: one of them at a time).
        return first_line(str(error))
    if isinstance(error, OSError) and error.filename is not None:
        # Hydra makes the run dir before any code of ours runs: an unwritable hydra.run.dir.
        return (
            f"{error.filename}: cannot be created or written ({error.strerror}); choose a writable "
            "place for it (hydra.run.dir, hydra.sweep.dir, or run from a writable folder)"
        )
    return None


def _raised_in(module: str, error: BaseException) -> bool:
    """Whether ``error`` was raised by code of ``module`` itself (its traceback's last frame)."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_globals.get("__name__") == module


def _missing_config(error: MissingConfigException) -> str:
    """``env=nope``, ``experiment=typo``, or an env without hyperparameters for a family."""
    missing = error.missing_cfg_file or ""
    group, _, choice = missing.rpartition("/")
    if group.startswith("hparams/"):
        family = group.split("/", 1)[1]
        return (
            f"env={choice}: no {family}.* hyperparameters for this env; add "
            f"conf/{missing}.yaml (one line `defaults: [/{group}/breakout]` reuses Breakout's)"
        )
    if group and error.options:
        return f"{group}={choice}: unknown choice; use one of {', '.join(sorted(error.options))}"
    return first_line(str(error))


def _parse_error(error: OverrideParseException) -> str:
    """Hints instead of parser jargon for the usual slips, read off the override itself."""
    override = error.override
    if "=" not in override:  # `env = cartpole` reaches Hydra as `env`, `=`, `cartpole`
        return f"{override}: not a key=value override; write key=value with no spaces around '='"
    if override.rstrip().endswith(","):
        return (
            f"{override}: ends with a comma; a comma separates the values of a sweep "
            "(python run.py -m key=a,b), so drop the last one"
        )
    return f"{override}: cannot be parsed ({first_line(error.message)})"


def _omegaconf_error(error: OmegaConfBaseException) -> str:
    """Unknown keys and wrong types, named by their full key."""
    key = getattr(error, "full_key", None) or "config"
    if isinstance(error, ConfigKeyError | AttributeError):
        return f"{key}: unknown key; check its spelling, or add a new key with +{key}=VALUE"
    if isinstance(error, ValidationError):
        value = getattr(error, "value", None)
        subject = f"{key}={value}" if value is not None else key
        return f"{subject}: {first_line(str(error))}"
    return f"{key}: {first_line(str(error))}"
