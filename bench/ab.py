"""Two edgesim trees against each other, both loaded at once: which costs less CPU.

On a shared VM a change worth 10% disappears in the minute-to-minute drift
of runs made one after another (bench/README.md, "The cost of a hook"). Here
both edges (and their workers) run on core 0 at the same time, each loaded by
its own wrk on core 1 with the origin, so any drift hits both alike. Each
round reports the CPU each edge's process tree (every thread, from
``/proc/<pid>/task/<tid>/schedstat``) spent per request it answered, and B's
share of A's; the median round is the verdict.

    python bench/ab.py --a /path/to/main --b . --case lae
    python bench/ab.py --a ../base --b . --case cff --rounds 9 --duration 5

``--a`` and ``--b`` are the roots of two checkouts (a ``git worktree`` of
the commit to compare with, say). Cases as in bench/hookcost.py: ``hit``,
``miss``, ``lae``, ``node``, ``cff``. Only 127.0.0.1 is used; everything
started is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import hookcost  # noqa: E402  (bench/hookcost.py: the cases' configs)
import run as base  # noqa: E402  (bench/run.py: processes, wrk, CPU accounting)


def start_edge(
    procs: base.Processes, name: str, root: Path, case: str, origin_port: int, tmp: Path
) -> tuple[int, int]:
    """The edge of checkout ``root`` for ``case``: its pid and port."""
    port = base.free_port()
    config = tmp / name / f"edge-{case}.yaml"
    config.parent.mkdir()
    hookcost.config(case, config, port, origin_port, config.parent)
    # -P and PYTHONPATH: the checkout's edgesim, not the one the working directory has.
    argv = ["env", f"PYTHONPATH={root}", sys.executable, "-P", "-m", "edgesim.cli", "serve"]
    argv += ["--config", str(config), "--no-reload"]
    found = subprocess.run(
        [*argv[:4], "-c", "import edgesim; print(edgesim.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"{name}: {root} does not hold the edgesim it runs ({found})")
    proc = procs.start(name, argv, base.SERVER_CORE)
    base.wait_ready(procs, name, proc, port)
    base.check_answer(port, "/obj-1k", 1024)
    return proc.pid, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="root of checkout A")
    parser.add_argument("--b", type=Path, required=True, help="root of checkout B")
    parser.add_argument("--case", choices=hookcost.CASES, default="lae")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per round")
    parser.add_argument("--connections", type=int, default=50, help="per edge")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgesim-ab-") as name:
        tmp = Path(name)
        with base.Processes(tmp) as procs:
            origin_port = base.free_port()
            origin = [sys.executable, str(base.PEERS / "origin.py"), "--port", str(origin_port)]
            base.wait_ready(
                procs, "origin", procs.start("origin", origin, base.LOAD_CORE), origin_port
            )
            edges = {
                label: start_edge(procs, label, root, args.case, origin_port, tmp)
                for label, root in (("A", args.a), ("B", args.b))
            }
            for _, port in edges.values():  # warm: environments, caches, the JIT
                base.run_wrk(port, "/obj-1k", 2, args.connections)
            shares = []
            for round_ in range(args.rounds):
                before = {label: base.cpu_seconds(pid) for label, (pid, _) in edges.items()}
                loads = {
                    label: subprocess.Popen(
                        base.wrk_argv(port, "/obj-1k", args.duration, args.connections),
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for label, (_, port) in edges.items()
                }
                outputs = {label: load.communicate()[0] for label, load in loads.items()}
                cost = {}
                for label, (pid, _) in edges.items():
                    result = base.parse_wrk(outputs[label])
                    if result["errors"]:
                        raise SystemExit(f"{label}: {result['errors']} failed requests")
                    spent = base.cpu_seconds(pid) - before[label]
                    cost[label] = spent * 1e6 / result["requests"]
                shares.append(cost["B"] / cost["A"])
                print(
                    f"round {round_ + 1}: A {cost['A']:6.1f} us, B {cost['B']:6.1f} us"
                    f" per request; B/A {shares[-1]:.3f}",
                    flush=True,
                )
    print(
        f"{args.case}: B costs {statistics.median(shares):.3f} of A's CPU per request"
        f" (median of {len(shares)} rounds, {min(shares):.3f}-{max(shares):.3f};"
        f" load {os.getloadavg()[0]:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
