"""``edgesim loadtest``: drive traffic through an edge and report what a CDN engineer asks.

Layout, each module importing only those above it:

    histogram, scenario           latency buckets; the request mix and phases (from a file)
    traffic, metrics, cost        the next request; a second's counts; the AWS price table
    client, driver                the generator's connection; one process's stages
    processes, edge_stats         the child processes; the edge's /stats before and after
    harness                       the coordinator: start, release, collect
    report, page, progress        the JSON document and text; the HTML page; live progress

``loadtest(options)`` runs one test, prints the summary, writes the files
asked for, and returns the report document.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from edgesim.loadtest.harness import LoadTestError, Options, run_loadtest

__all__ = ["LoadTestError", "Options", "loadtest"]


def loadtest(
    options: Options,
    *,
    json_path: Path | None = None,
    html_path: Path | None = None,
    out: IO[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the load test, print its summary to ``out``, write the JSON and HTML reports."""
    from edgesim.loadtest import page, report
    from edgesim.loadtest.progress import Progress

    out = out or sys.stdout
    live = Progress(out, enabled=progress)
    try:
        run = run_loadtest(options, on_tick=live.update)
    finally:
        live.close()
    doc = report.build(run)
    if json_path is not None:
        json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if html_path is not None:
        html_path.write_text(page.render(doc), encoding="utf-8")
    print(report.summary(doc), file=out, flush=True)
    return doc
