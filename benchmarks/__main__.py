"""``python -m benchmarks``: every benchmark with the one-line question it answers.

Read from each module's docstring without importing it (imports load torch, ALE, SB3).
"""

from __future__ import annotations

import ast
from pathlib import Path

#: Modules that serve the benchmarks and answer no question themselves.
HELPERS = {"__init__", "__main__", "harness", "stock"}


def main() -> None:
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem not in HELPERS:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            print(f"python -m benchmarks.{path.stem:<20} {doc.splitlines()[0]}")


if __name__ == "__main__":
    main()
