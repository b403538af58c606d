"""The one error type a user sees: something they typed or chose, reported as one line.

Every message reads ``<key or thing>: <what is wrong and what is allowed>``; ``run.py`` prints
it as ``error: <message>`` and exits with status 1, without a traceback.
"""

import argparse
import re
import shlex
from collections.abc import Iterable
from typing import NoReturn


class ConfigError(ValueError):
    """A config value (or a choice of env, algorithm, file...) that the run cannot accept.

    :param subject: what is wrong, usually ``key=value`` as the user typed it
    :param problem: what is wrong with it and what is allowed instead
    """

    def __init__(self, subject: str, problem: str) -> None:
        super().__init__(f"{subject}: {problem}")


def require_one_of(key: str, value: object, allowed: Iterable[str]) -> None:
    """Raise ``key=value: not one of the choices; use one of ...`` unless ``value`` is allowed."""
    names = list(allowed)
    if value not in names:
        raise ConfigError(f"{key}={value}", f"unknown choice; use one of {', '.join(names)}")


def first_line(text: str) -> str:
    """The first non-blank line of a library's message: the part a one-line error can show."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


def shell_override(key: str, value: object) -> str:
    """``key=value`` as a user pastes it into a shell: quoted for Hydra's override grammar
    (which refuses unquoted spaces and non-ASCII) and then for the shell."""
    text = str(value)
    if not re.fullmatch(r"[\w/.:+-]+", text, re.ASCII):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return shlex.quote(f"{key}={text}")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose bad command line is a :class:`ConfigError` (one line), not a usage block."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(self.prog, message)
