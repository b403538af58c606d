"""What a benchmark report says about the machine it ran on."""

from __future__ import annotations

import platform
import time
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux), else whatever the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_report(path: Path, lines: list[str], started: float) -> None:
    """Close a benchmark's markdown report with its total time, write it, and say where."""
    lines += ["", f"Total benchmark time: {time.perf_counter() - started:.0f} s.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")
