"""``python -m benchmarks``: every benchmark with the one-line question it answers, read from
its docstring without importing it (imports load torch, ALE, SB3)."""

import ast
from pathlib import Path

HELPERS = {"__init__", "__main__", "harness", "stock"}  # they serve, and answer no question

for path in sorted(Path(__file__).parent.glob("*.py")):
    if path.stem not in HELPERS:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        print(f"python -m benchmarks.{path.stem:<20} {doc.splitlines()[0]}")
