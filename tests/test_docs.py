"""docs/reliability.md's table of hostile cases names, for each, the test that checks it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "reliability.md"
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?`")


def _references() -> list[tuple[str, str]]:
    """(test file, test name) of every ``checked by`` cell in the table."""
    rows = [line for line in TABLE.read_text().splitlines() if line.startswith("| ")]
    return [match.groups() for row in rows for match in _REFERENCE.finditer(row.split(" | ")[-1])]


REFERENCES = _references()


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_the_table_names_a_test_for_each_case() -> None:
    assert len(REFERENCES) >= 30


@pytest.mark.parametrize(("file", "name"), REFERENCES, ids=[f"{f}::{n}" for f, n in REFERENCES])
def test_every_named_test_exists(file: str, name: str) -> None:
    path = ROOT / file
    assert path.is_file(), f"{file} does not exist"
    assert name.startswith("test_") and name in _test_names(path), f"{file} has no {name}"
