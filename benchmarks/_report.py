"""Markdown output of ``benchmarks/run.py``: the machine header, tables, numbers."""

from __future__ import annotations

import os
import platform
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(versions: dict[str, Any]) -> str:
    """The header: CPU, cores, OS, and the versions a worker process reported."""
    lines = [(f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores; every implementation "
              "in its own process on one thread)"),
             f"- OS: {platform.platform()}",
             (f"- python {versions.get('python')}, numpy {versions.get('numpy')}, "
              f"mlx {versions.get('mlx') or 'not installed'}, "
              f"torch {versions.get('torch') or 'not installed'}")]
    return "\n".join(lines)


def table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A markdown table; the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    rule = "|" + "|".join(("-" * (w + 1) + ("-" if i < left else ":")) for i, w in
                          enumerate(widths)) + "|"
    return "\n".join([line(headers), rule] + [line(r) for r in rows])


def num(seconds: float | None, scale: float = 1e6, digits: int = 0) -> str:
    """seconds in µs (scale 1e6) or ms (1e3); "—" where there is no measurement."""
    return "—" if seconds is None else f"{seconds * scale:,.{digits}f}"


def ratio_cell(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}"


def verdict(r: float | None, target: float | None) -> str:
    if r is None or target is None:
        return "—"
    return "yes" if r <= target else "**no**"


def kib(n: int | None) -> str:
    return "—" if n is None else f"{n / 2**10:,.1f}"
