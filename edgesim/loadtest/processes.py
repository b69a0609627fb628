"""The processes a load test runs besides its coordinator: generators, its own edge, a stub.

Each is started with multiprocessing's ``spawn`` (a fresh interpreter: no
inherited event loop, no copied sockets) and talks to the coordinator over
one pipe, in tuples:

* generator: sends ``("ready",)``, waits for ``("go",)``, then for each
  stage ``("interval", stage, index, tally)`` per second and
  ``("stage", stage, result)`` at its end, waiting for another ``("go",)``
  between stages. ``("stop",)`` ends the current stage early.
* edge: sends ``("ready", url, admin_url)`` or ``("error", message)``; runs
  until ``("stop",)`` arrives or the pipe closes.
* stub: a trivial HTTP/1.1 server (answers every request with the same
  bytes, parsing nothing but the blank line that ends a request head), the
  yardstick of the generator's own ceiling; sends ``("ready", port)``
  (or ``("error", traceback)``).

A child whose coordinator dies sees its pipe close and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import traceback
from multiprocessing.connection import Connection
from typing import Any

from edgesim.loadtest.driver import Stage, run_stage
from edgesim.loadtest.metrics import Tally
from edgesim.loadtest.scenario import Scenario

__all__ = ["SPAWN", "edge_main", "generator_main", "stub_main"]

SPAWN = multiprocessing.get_context("spawn")


def _run(main: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _serve(conn: Connection, main: Any) -> None:
    """Run a child's ``main``; what goes wrong reaches the parent as an error message."""
    try:
        _run(main)
    except Exception:
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _pin(cpus: frozenset[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


class _Inbox:
    """Messages from the coordinator, read by the event loop as they arrive."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.go = asyncio.Event()
        self.stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(conn.fileno(), self._read)

    def _read(self) -> None:
        try:
            message = self.conn.recv()
        except (EOFError, OSError):  # the coordinator is gone
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            self.stop.set()
            self.go.set()
            return
        if message[0] == "go":
            self.go.set()
        elif message[0] == "stop":
            self.stop.set()
            self.go.set()

    async def wait_go(self) -> bool:
        """True to carry on, False when told to stop."""
        await self.go.wait()
        self.go.clear()
        return not self.stop.is_set()


def generator_main(
    conn: Connection, scenario: Scenario, stages: list[Stage], cpus: frozenset[int] | None
) -> None:
    """A generator process: run ``stages`` in order, each after a go from the coordinator."""
    _pin(cpus)

    async def main() -> None:
        inbox = _Inbox(conn)
        conn.send(("ready",))
        for stage in stages:
            if not await inbox.wait_go():
                break

            def send(index: int, tally: Tally, name: str = stage.name) -> None:
                conn.send(("interval", name, index, tally.to_dict()))

            result = await run_stage(stage, scenario, send, inbox.stop)
            conn.send(("stage", stage.name, result.to_dict()))

    _serve(conn, main())


def edge_main(conn: Connection, config_path: str, cpus: frozenset[int] | None) -> None:
    """The edge a load test starts from ``--config``, on ephemeral loopback ports."""
    _pin(cpus)
    from edgesim.config.loader import load_config
    from edgesim.config.schema import Listen
    from edgesim.errors import ConfigError
    from edgesim.service import Edge

    async def main() -> None:
        try:
            config = load_config(config_path)
        except ConfigError as error:
            conn.send(("error", str(error)))
            return
        loopback = Listen("127.0.0.1", 0)
        config = dataclasses.replace(config, listen=loopback, admin_listen=loopback)
        edge = Edge(config)  # no console echo: function logs would slow the edge down
        try:
            await edge.start()
        except OSError as error:
            conn.send(("error", f"the edge did not start: {error}"))
            await edge.stop(grace=0.5)
            return
        inbox = _Inbox(conn)
        conn.send(("ready", edge.url, edge.admin_url))
        await inbox.stop.wait()
        await edge.stop(grace=2.0)

    _serve(conn, main())


class _Stub(asyncio.Protocol):
    answer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.tail = b""

    def data_received(self, data: bytes) -> None:
        data = self.tail + data
        count = data.count(b"\r\n\r\n")
        self.tail = data[data.rfind(b"\r\n\r\n") + 4 :] if count else data[-3:]
        if count:
            self.transport.write(self.answer * count)


def stub_main(conn: Connection, body_size: int, cpus: frozenset[int] | None) -> None:
    """A trivial server: the same 200 response, ``body_size`` bytes of body, to everything."""
    _pin(cpus)
    _Stub.answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"X-Cache: Hit from cloudfront\r\nContent-Length: %d\r\n\r\n" % body_size
    ) + b"x" * body_size

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Stub, "127.0.0.1", 0, backlog=4096)
        inbox = _Inbox(conn)
        conn.send(("ready", server.sockets[0].getsockname()[1]))
        await inbox.stop.wait()
        server.close()

    _serve(conn, main())
