"""benchmarks/minatar_throughput.py through its command line: every side trains the same
number of updates in each window, and the report carries them beside the ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_side_makes_the_same_updates_and_the_report_says_so(tmp_path: Path) -> None:
    output = tmp_path / "minatar_throughput.md"
    argv = ["--steps", "64", "--repeats", "2", "--threads", "1", "--learning-starts", "100"]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.minatar_throughput", *argv, "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(output.with_suffix(".json").read_text())
    section, floor = record["sections"].values()
    assert [row["side"] for row in floor["rows"]] == ["stock", "ours, 8 envs"]
    # One update of MinAtar's network: forward (2 networks) and backward, tens of MFLOP.
    assert all(10 < row["MFLOP"] < 100 and row["update / floor"][0] > 0 for row in floor["rows"])
    updates = section["figures"]["updates per window"]
    assert set(updates) == {"stock", "ours, 1 env", "ours, 8 envs"}
    assert all(counts == [16, 16] for counts in updates.values()), updates
    assert section["figures"]["ours, 8 envs / stock"] > 0
    assert "updates in each window" in output.read_text()
