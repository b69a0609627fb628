"""Live progress of a load test: a rich table on a terminal, plain lines elsewhere.

rich (Textualize) redraws a table in place, keeps the terminal tidy on
resize and Ctrl-C, and is imported only when the output is a terminal.
Piped or redirected output (CI logs, ``| tee``) gets one plain line every
few seconds instead, with the same fields.
"""

from __future__ import annotations

import time
from typing import IO, Any

from edgesim.loadtest.harness import RunData, StageData
from edgesim.loadtest.metrics import Tally

__all__ = ["Progress"]

PLAIN_EVERY = 5.0  # seconds between plain progress lines
_STAGE_NAMES = {"warmup": "warm-up", "measure": "measuring"}


class Progress:
    """Call ``update`` as results come in, and ``close`` at the end (also on errors)."""

    def __init__(
        self, stream: IO[str], *, enabled: bool = True, every: float = PLAIN_EVERY
    ) -> None:
        self._stream = stream
        self._every = every
        self._enabled = enabled
        self._live: Any = None
        self._stage: str | None = None
        self._started = 0.0
        self._last_plain = 0.0
        self._interactive = enabled and stream.isatty()

    def update(self, stage: str, data: StageData, run: RunData) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._started, self._last_plain = stage, now, now - self._every
        fields = self._fields(stage, data, run, now - self._started)
        if self._interactive:
            self._draw(fields)
        elif now - self._last_plain >= self._every:
            self._last_plain = now
            text = "  ".join(f"{k} {v}" for k, v in fields.items())
            print(f"loadtest: {text}", file=self._stream, flush=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @staticmethod
    def _fields(stage: str, data: StageData, run: RunData, elapsed: float) -> dict[str, str]:
        intervals = data.intervals
        last: Tally | None = None
        if intervals:  # the last whole second is steadier than the one filling up
            keys = sorted(intervals)
            last = intervals[keys[-2]] if len(keys) > 1 else intervals[keys[-1]]
        total = data.total
        ratio = total.hit_ratio
        planned = run.options.warmup if stage == "warmup" else sum(p.duration for p in run.phases)
        clock = f"{elapsed:.0f}/{planned:.0f} s" if planned < 86_400 else f"{elapsed:.0f} s"
        return {
            "stage": _STAGE_NAMES.get(stage, stage),
            "elapsed": clock,
            "requests": f"{total.requests:,}",
            "req/s": f"{last.answered_count:,}" if last else "-",
            "p50": f"{last.latency.percentile(0.5) / 1000:.2f} ms" if last else "-",
            "p99": f"{last.latency.percentile(0.99) / 1000:.2f} ms" if last else "-",
            "errors": f"{total.error_count + total.server_errors:,}",
            "hit ratio": "-" if ratio is None else f"{ratio:.1%}",
        }

    def _draw(self, fields: dict[str, str]) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        table = Table(title="edgesim loadtest", title_justify="left")
        for name in fields:
            table.add_column(name, justify="right")
        table.add_row(*fields.values())
        if self._live is None:
            console = Console(file=self._stream)
            self._live = Live(table, console=console, refresh_per_second=4, transient=False)
            self._live.start()
        else:
            self._live.update(table)
