"""The protocol every benchmark shares: sides as data, interleaved repeats, paired ratios, the
machine header and the report (markdown + JSON). Why interleaved and paired, and how to add a
benchmark: docs/benchmarks/README.md.

    result = run([Side("stock", build_stock, timed(train)), Side("ours", ...)], repeats=15)
    result.ratio("ours", "stock")   # Ratio(median=0.98, low=0.95, high=1.02)
"""

import argparse
import datetime
import json
import operator
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import torch

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
VERSIONS = ("numpy", "torch", "stable-baselines3", "gymnasium", "ale-py")


class Side(NamedTuple):
    """One thing under test: how to build it once, and one measurement of what was built."""

    name: str
    build: Callable[[], Any]
    measure: Callable[[Any], float]


class Ratio(NamedTuple):
    """The median over repeats of a paired ratio, and its range over repeats."""

    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.3f} ({self.low:.3f} - {self.high:.3f})"


@dataclass
class Result:
    """Every side's measurement per repeat, and the load average after each repeat."""

    values: dict[str, list[float]]
    load: list[float] = field(default_factory=list)
    built: dict[str, Any] = field(default_factory=dict, repr=False)

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def ratio(self, name: str, baseline: str) -> Ratio:
        """``name / baseline`` within each repeat: median and range over repeats."""
        pairs = [a / b for a, b in zip(self.values[name], self.values[baseline], strict=True)]
        return Ratio(statistics.median(pairs), min(pairs), max(pairs))


def timed(work: Callable[[Any], object], units: int = 1) -> Callable[[Any], float]:
    """A :attr:`Side.measure` that runs ``work(built)`` and returns its seconds per unit."""

    def measure(built: Any) -> float:
        start = time.perf_counter()
        work(built)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / units

    return measure


def run(sides: Sequence[Side], repeats: int, warmup: int = 1) -> Result:
    """Build every side, warm each up, then ``repeats`` rounds of one measurement per side."""
    result = Result({side.name: [] for side in sides}, built={s.name: s.build() for s in sides})
    for side in sides:
        for _ in range(warmup):  # allocators, optimizer state, lazy initialisation, JIT
            side.measure(result.built[side.name])
    for repeat in range(repeats):
        start = repeat % len(sides)
        for side in [*sides[start:], *sides[:start]]:
            result.values[side.name].append(value := side.measure(result.built[side.name]))
            print(f"  repeat {repeat + 1}: {side.name}: {value:.4g}", flush=True)
        result.load.append(os.getloadavg()[0])
    return result


def kernel_seconds(function: Callable[[], object], min_run_time: float = 1.0) -> float:
    """Median seconds of one call of a small function, by ``torch.utils.benchmark``."""
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt="function()", globals={"function": function})
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)


def command() -> str:
    """How this process was started, as a report quotes it: ``python -m benchmarks.x ...``."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    name = spec.name if spec is not None else Path(sys.argv[0]).stem
    return " ".join(["python -m", name, *sys.argv[1:]])


def machine() -> dict[str, Any]:
    """What a figure depends on besides the code: CPU, threads, versions, load at the start."""
    cpus = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((x.split(":", 1)[1].strip() for x in cpus if x.startswith("model name")), "?")
    versions = {"python": platform.python_version()} | {p: metadata.version(p) for p in VERSIONS}
    return {
        "date": f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": versions,
        "load_at_start": os.getloadavg()[0],
    }


def cell(value: Any) -> str:
    """A value as a table writes it: 4 significant digits, a bool as a target's verdict."""
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return "" if value is None else str(value)


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown lines of ``rows`` (one dict a row, its keys the header), cells by :func:`cell`."""
    header = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(row.get(k)) for k in header) + " |" for row in rows]


def ratio_rows(
    result: Result,
    names: Sequence[str],
    baseline: str,
    unit: str = "ms",
    scale: float = 1e3,
    target: str = "",
) -> list[dict[str, Any]]:
    """Per side: its median times ``scale``, its paired ratio to ``baseline`` (median and
    range) and, with a ``target`` (``"<= 1.05"``, ``">= 1.5"``), whether the median meets it."""
    rows = []
    for name in names:
        ratio = result.ratio(name, baseline)
        rows.append({"side": name, unit: scale * result.median(name), f"/ {baseline}": ratio})
        if target:
            compare, limit = {"<=": operator.le, ">=": operator.ge}[target[:2]], float(target[2:])
            rows[-1][target] = compare(ratio.median, limit) if name != baseline else None
    return rows


class Report:
    """One report: markdown for people and, beside it, JSON for diffing a later run."""

    def __init__(self, title: str) -> None:
        self.started, self.data = time.perf_counter(), dict[str, Any]()
        self.header = h = {"command": command(), **machine()}
        versions = ", ".join(f"{k} {v}" for k, v in h["versions"].items())
        self.lines = [f"# {title}", "", f"Command: `{h['command']}`", ""]
        self.lines.append(
            f"- {h['date']}; {h['cpu']}; GPU: {h['gpu']}; torch threads: "
            f"{h['torch_threads']}; 1-min load at start: {h['load_at_start']:.2f}"
        )
        self.lines.append(f"- {versions}; {h['platform']}")

    def section(
        self,
        heading: str,
        rows: Sequence[dict[str, Any]] = (),
        notes: Sequence[str] = (),
        result: Result | None = None,
        figures: dict[str, Any] | None = None,
    ) -> None:
        """A ``##`` section: a table of ``rows``, ``notes``; the JSON gets ``figures`` too."""
        lines = [*(table(rows) if rows else []), *(["", *notes] if notes and rows else notes)]
        self.data[heading] = {"rows": list(rows), "figures": figures}
        if result is not None:
            self.data[heading].update(values=result.values, load=result.load)
            low, high = min(result.load), max(result.load)
            lines += ["", f"1-min load average per repeat: {low:.2f} - {high:.2f}"]
        self.lines += ["", f"## {heading}", "", *lines]
        print("\n".join(self.lines[-len(lines) - 3 :]), flush=True)

    def write(self, path: Path) -> None:
        """Write ``path`` (markdown) and ``path`` with ``.json``: header, raw values, figures."""
        seconds = time.perf_counter() - self.started
        self.lines += ["", f"Total benchmark time: {seconds:.0f} s.", ""]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines))
        record = {**self.header, "seconds": seconds, "sections": self.data}
        path.with_suffix(".json").write_text(json.dumps(record, indent=1, default=str) + "\n")
        print(f"wrote {path} and {path.with_suffix('.json').name}")


def parser(doc: str | None, output: str, **defaults: Any) -> argparse.ArgumentParser:
    """The one argument parser: ``--output`` (under docs/benchmarks/ by default) and a
    ``--flag-name`` for each keyword, typed by its default (a list: several values; None: str)."""
    parsed = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parsed.add_argument("--output", type=Path, default=DOCS / output)
    for name, default in defaults.items():
        listed = isinstance(default, list)
        kind = str if default is None else type(default[0] if listed else default)
        nargs = "+" if listed else None
        parsed.add_argument("--" + name.replace("_", "-"), type=kind, nargs=nargs, default=default)
    return parsed
