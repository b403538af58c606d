"""``python -m benchmarks``: every benchmark's question, from its docstring (not imported)."""

import ast
from pathlib import Path

HELPERS = {"__init__", "__main__", "harness", "stock"}  # they serve, and answer no question

for path in sorted(Path(__file__).parent.glob("*.py")):
    if path.stem not in HELPERS:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        print(f"python -m benchmarks.{path.stem:<20} {doc.splitlines()[0]}")
