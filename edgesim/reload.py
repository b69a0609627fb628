"""Hot reload: the next generation of a running edge, from an edited config or function.

A generation is what one config makes of the edge: its pipeline (behaviors,
policies, origins, functions attached) and the worker pools of its functions.
``Reloader.reload`` loads the config again and, if it validates, swaps the
edge's server to a new generation; the EdgeServer itself (its listener, its
connections, its counters and whatever records requests on it) stays. A
config that does not validate is reported (file, line, key path) and the
running generation stays.

What carries over, and what does not:

- Requests in flight finish on the generation they started on: its config,
  and its pools with their warm environments. Those pools of changed
  functions are closed once no exchange of the old generation is still being
  answered. A package folder is not copied, so an old generation's exchange
  that needs a new environment (none is free) loads the code as it is on disk
  now. Exchanges of a replaced generation store nothing more in the cache.
- A function whose config or sources changed gets a new pool: fresh workers,
  so its next invocation is a cold start. Its sources (``function_sources``)
  are its package folder (Python and Node.js Lambda@Edge: every file in it),
  or for a CloudFront Function its code file and its key value store file.
  Unchanged functions keep their pool and its warm environments; functions
  that share a package folder share its changes, as they would share a
  deployment package.
- The cache stays, except objects whose behavior changed in a way that makes
  them meaningless (``cache_identity``): per object, the behavior its path
  matches before and after the reload is compared, and the object is dropped
  when the two differ in the cache key settings (query strings, headers,
  cookies, Accept-Encoding), the origin request policy, the origin (or origin
  group) and its definition, compression, or the origin-request or
  origin-response function (its association, config or code), all of which
  shaped the stored object or its key. TTLs and viewer-facing functions do
  not: a stored object keeps the TTL it was given when it was stored (the TTL
  rules of Expiration.md apply at that moment; this is edgesim's choice, AWS
  does not say what a changed policy does to objects already cached), and
  viewer functions run on every request anyway. A viewer-request function can rewrite
  the URI, so a behavior with one may have stored objects under any path:
  when such a behavior changes in one of these ways, the whole cache goes.
  A smaller ``cache.max_size`` evicts least recently used objects to fit.
- ``listen`` and ``admin_listen`` need a restart; a change to them is
  reported and the edge keeps its addresses.

``watch`` notices edits with watchfiles (inotify, FSEvents or polling): the
config file, every function's package folder (``__pycache__`` and ``.pyc``
files aside) and every CloudFront Function's code and key value store file
(their folders are watched, not recursively, for those files alone, so an
editor that saves by renaming a new file into place is seen too). Tests call
``reload`` directly; ``watching`` and ``wait_for_reload`` let them wait for
the watcher without timing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgesim.behaviors import BehaviorMatcher
from edgesim.cache import key_target
from edgesim.config.schema import Behavior, Config, FunctionConfig
from edgesim.errors import ConfigError
from edgesim.hooks import EventType
from edgesim.invoker import FunctionInvoker
from edgesim.pipeline import Pipeline

if TYPE_CHECKING:
    from edgesim.service import Edge
    from edgesim.workers.pool import FunctionPool

__all__ = [
    "ReloadReport",
    "Reloader",
    "Watched",
    "cache_identity",
    "function_sources",
    "package_digest",
]

# How long a replaced generation may take to finish its requests before its
# pools are closed anyway (a stuck stream must not keep workers forever).
RETIRE_GRACE = 300.0
_ORIGIN_EVENTS = frozenset({EventType.ORIGIN_REQUEST.value, EventType.ORIGIN_RESPONSE.value})
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def package_digest(folder: Path) -> str:
    """A digest of a function package's files (names and contents), the way a
    deployment would differ; Python's bytecode caches are left out."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = Path(root, name)
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with contextlib.suppress(OSError):
                digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def function_sources(function: FunctionConfig) -> tuple[Path, ...]:
    """What a function is loaded from: its package folder, or a CloudFront
    Function's code file and key value store file."""
    if function.is_cloudfront_function:
        kvs = function.key_value_store
        return (function.code,) if kvs is None else (function.code, kvs)
    return (function.code,)


def _source_digest(path: Path) -> str:
    if path.is_dir():
        return package_digest(path)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def _digests(config: Config) -> dict[str, str]:
    by_path: dict[Path, str] = {}
    out = {}
    for name, function in config.functions.items():
        parts = []
        for path in function_sources(function):
            if path not in by_path:
                by_path[path] = _source_digest(path)
            parts.append(by_path[path])
        out[name] = ":".join(parts)
    return out


def cache_identity(
    behavior: Behavior, config: Config, digests: dict[str, str]
) -> tuple[object, ...]:
    """What about ``behavior`` shaped the objects it stored and their keys.

    Two behaviors with equal identities store interchangeable objects; the
    module docstring lists what is in it and why.
    """
    policy = behavior.cache
    functions = tuple(
        (event, association, config.functions[association.function],
         digests.get(association.function))
        for event, association in behavior.functions
        if event in _ORIGIN_EVENTS
    )  # fmt: skip
    return (
        (
            policy.query_strings,
            policy.headers,
            policy.cookies,
            policy.accept_encoding_gzip,
            policy.accept_encoding_brotli,
        ),
        behavior.origin_request,
        (config.origin_groups.get(behavior.origin), config.origin_chain(behavior.origin)),
        behavior.compress,
        functions,
    )


_IDENTITY_PARTS = (
    "cache key settings",
    "origin request policy",
    "origin",
    "compression",
    "origin-facing function",
)


def _why_changed(before: tuple[object, ...], after: tuple[object, ...]) -> str:
    changed = [part for part, a, b in zip(_IDENTITY_PARTS, before, after, strict=True) if a != b]
    return ", ".join(changed) + " changed"


@dataclass(frozen=True, slots=True)
class Watched:
    """What the watcher watches: a change to any of these reloads."""

    config: Path | None
    folders: tuple[Path, ...]  # package folders, recursively
    files: tuple[Path, ...]  # CloudFront Functions' code and key value store files

    @property
    def file_set(self) -> tuple[Path, ...]:
        """The config file and the function files: the ones watched one by one."""
        return (*([self.config] if self.config is not None else []), *self.files)


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What one reload did (or why it did nothing), for the console and tests."""

    generation: int  # the generation running afterwards
    applied: bool
    error: str | None = None  # the ConfigError (file:line: key: message), if any
    changed: tuple[str, ...] = ()  # functions given fresh workers (changed or added)
    kept: tuple[str, ...] = ()  # functions that kept their warm workers
    removed: tuple[str, ...] = ()
    dropped: int = 0  # cache objects dropped
    kept_objects: int = 0
    reasons: tuple[str, ...] = ()  # why objects were dropped, per behavior
    notes: tuple[str, ...] = ()

    def lines(self, source: str) -> list[str]:
        """The console's account of this reload."""
        if self.error is not None:
            return [
                f"edgesim: reload failed: {self.error}",
                f"edgesim: still serving generation {self.generation} (the last config that "
                "loaded)",
            ]
        if not self.applied:
            return [f"edgesim: {source} changed, nothing to apply (generation {self.generation})"]
        lines = [f"edgesim: reloaded {source}: generation {self.generation}"]
        if self.changed:
            lines.append(
                f"edgesim:   fresh workers (next invocation is a cold start): "
                f"{', '.join(self.changed)}"
            )
        if self.kept:
            lines.append(f"edgesim:   warm workers kept: {', '.join(self.kept)}")
        if self.removed:
            lines.append(f"edgesim:   functions removed: {', '.join(self.removed)}")
        if self.dropped:
            lines.append(
                f"edgesim:   cache: dropped {self.dropped} objects ({'; '.join(self.reasons)}), "
                f"kept {self.kept_objects}"
            )
        else:
            lines.append(f"edgesim:   cache kept ({self.kept_objects} objects)")
        lines += [f"edgesim:   {note}" for note in self.notes]
        return lines


class Reloader:
    """Reloads ``edge`` from ``load()`` on demand (``reload``) or on file changes (``watch``).

    ``load`` returns the config as the edge was started with it (the file,
    plus any command-line overrides); it raises ConfigError for a bad one.
    ``echo`` gets each console line. The reloader is closed with the edge.
    """

    def __init__(
        self,
        edge: Edge,
        load: Callable[[], Config],
        *,
        echo: Callable[[str], None] | None = None,
        debounce_ms: int = 400,
    ) -> None:
        self.edge = edge
        self.generation = 1
        self.attempts = 0  # reloads tried, applied or not
        self.last: ReloadReport | None = None
        self.watching = asyncio.Event()
        self._load = load
        self._echo = echo
        self._debounce_ms = debounce_ms
        # What the running functions were loaded from, to tell an edit apart.
        self._digests = _digests(edge.config)
        self._lock = asyncio.Lock()
        self._done = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._retiring: set[FunctionPool] = set()
        self._watcher: asyncio.Task[None] | None = None
        edge.reloader = self

    @property
    def retiring(self) -> int:
        """Pools of replaced generations still waiting for their last request."""
        return len(self._retiring)

    @property
    def source(self) -> str:
        return str(self.edge.config.source or "the config")

    async def reload(self) -> ReloadReport:
        """Load the config again and switch to it if it validates and differs."""
        async with self._lock:
            report = await self._reload()
        self.last = report
        for line in report.lines(self.source):
            self._say(line)
        async with self._done:
            self.attempts += 1
            self._done.notify_all()
        return report

    async def wait_for_reload(self, after: int) -> ReloadReport:
        """Wait until more than ``after`` reloads were tried; the latest one's report."""
        async with self._done:
            await self._done.wait_for(lambda: self.attempts > after)
        assert self.last is not None
        return self.last

    async def _reload(self) -> ReloadReport:
        edge = self.edge
        try:
            config = await asyncio.to_thread(self._load)
            digests = await asyncio.to_thread(_digests, config)
        except ConfigError as error:
            return ReloadReport(self.generation, applied=False, error=str(error))
        old = edge.config
        notes = []
        for field in ("listen", "admin_listen"):
            if getattr(config, field) != getattr(old, field):
                notes.append(f"{field} changed to {getattr(config, field)}: restart to apply it")
        config = dataclasses.replace(config, listen=old.listen, admin_listen=old.admin_listen)
        if config == old and digests == self._digests:
            return ReloadReport(self.generation, applied=False, notes=tuple(notes))
        before = self._digests
        kept = sorted(
            name
            for name, function in config.functions.items()
            if old.functions.get(name) == function and before.get(name) == digests[name]
        )
        fresh = sorted(set(config.functions) - set(kept))
        removed = sorted(set(old.functions) - set(config.functions))
        old_invoker = edge.functions
        pools = old_invoker.pools if isinstance(old_invoker, FunctionInvoker) else {}
        invoker = None
        if config.functions:
            invoker = FunctionInvoker(
                config.functions,
                log_dir=edge.log_dir,
                echo=edge.echo,
                reuse={name: pools[name] for name in kept if name in pools},
            )
            try:
                await asyncio.gather(*(invoker.pools[name].start() for name in fresh))
            except BaseException as error:
                # Failed or cancelled (the edge is stopping): no worker may be left behind.
                await asyncio.gather(
                    *(invoker.pools[name].close() for name in fresh), return_exceptions=True
                )
                if not isinstance(error, Exception):
                    raise
                return ReloadReport(
                    self.generation, applied=False, error=f"cannot start workers: {error}"
                )
        server = edge.server
        current = server.pipeline
        pipeline = Pipeline(
            config, server.origins, invoker=invoker, store=current.store, clock=current.clock
        )
        dropped, reasons = self._drop_meaningless(old, config, before, digests, current)
        server.replace_pipeline(pipeline, invoker)
        current.retire()
        evicted = current.store.resize(config.cache.max_size)
        if evicted:
            notes.append(f"cache.max_size is smaller: evicted {evicted} objects")
        edge.config = config
        edge.functions = invoker
        self._digests = digests
        self.generation += 1
        retiring = [pools[name] for name in (*fresh, *removed) if name in pools]
        if retiring:
            self._retiring.update(retiring)
            self._spawn(self._retire(current, retiring))
        return ReloadReport(
            self.generation,
            applied=True,
            changed=tuple(fresh),
            kept=tuple(kept),
            removed=tuple(removed),
            dropped=dropped,
            kept_objects=len(current.store),
            reasons=tuple(reasons),
            notes=tuple(notes),
        )

    @staticmethod
    def _drop_meaningless(
        old: Config,
        new: Config,
        before: dict[str, str],
        after: dict[str, str],
        pipeline: Pipeline,
    ) -> tuple[int, list[str]]:
        """Drop the objects the reload makes meaningless; returns how many, and why."""
        store = pipeline.store
        if not len(store):
            return 0, []
        old_match = BehaviorMatcher(old.all_behaviors).match
        new_match = BehaviorMatcher(new.all_behaviors).match
        new_by_pattern = {b.path_pattern: b for b in new.all_behaviors}
        reasons: dict[str, str] = {}
        for behavior in old.all_behaviors:
            if not any(event == EventType.VIEWER_REQUEST.value for event, _ in behavior.functions):
                continue
            successor = new_by_pattern.get(behavior.path_pattern)
            identity = cache_identity(behavior, old, before)
            if successor is None or cache_identity(successor, new, after) != identity:
                # Its viewer-request function may have stored objects under any path.
                count = len(store)
                store.clear()
                why = (
                    "removed"
                    if successor is None
                    else _why_changed(identity, cache_identity(successor, new, after))
                )
                return count, [
                    f"{behavior.path_pattern} {why}, and its viewer-request function "
                    "can rewrite URIs, so every object went"
                ]
        identities: dict[tuple[int, int], str | None] = {}
        doomed = []
        for entry in store.entries():
            path = key_target(entry.key).partition("?")[0]
            was, now = old_match(path), new_match(path)
            pair = (id(was), id(now))
            if pair not in identities:
                a, b = cache_identity(was, old, before), cache_identity(now, new, after)
                identities[pair] = None if a == b else _why_changed(a, b)
                if a != b:
                    name = was.path_pattern
                    if now.path_pattern != name:
                        name += f" (now {now.path_pattern})"
                    reasons.setdefault(name, f"{name}: {identities[pair]}")
            if identities[pair] is not None:
                doomed.append(entry.key)
        for key in doomed:
            store.remove(key)
        return len(doomed), list(reasons.values())

    async def _retire(self, pipeline: Pipeline, pools: list[FunctionPool]) -> None:
        """Close a replaced generation's pools once its last exchange is answered."""
        deadline = time.monotonic() + RETIRE_GRACE
        while self.edge.server.in_use(pipeline) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)
        self._retiring.difference_update(pools)

    # -- watching ------------------------------------------------------------

    def watched(self) -> Watched:
        """The config file and the function sources a change to reloads."""
        config = self.edge.config
        sources = {path for f in config.functions.values() for path in function_sources(f)}
        folders = tuple(sorted(p for p in sources if p.is_dir()))
        files = tuple(sorted(sources.difference(folders)))
        return Watched(config.source, folders, files)

    def start(self) -> None:
        """Start watching the config file and the function sources."""
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        from watchfiles import awatch

        ready = {"files": False, "folders": False}
        changed = asyncio.Event()

        def seen(part: str) -> None:
            ready[part] = True
            if all(ready.values()):
                self.watching.set()

        async def watch(part: str) -> None:
            """Watch the files or the folders of the running generation, again
            whenever a reload changes which ones those are."""
            while True:
                paths = self._watch_list(part)
                if not paths:
                    seen(part)
                    await self._next_generation()
                    continue
                if part == "folders":
                    targets, recursive, wanted = paths, True, _package_file
                else:
                    names = {str(p.resolve()) for p in paths}
                    targets = tuple(sorted({p.parent for p in paths}))
                    recursive = False

                    def wanted(_change: object, path: str, names: set[str] = names) -> bool:
                        return str(Path(path).resolve()) in names

                stop = asyncio.Event()
                restart = self._spawn(self._stop_when_generation_changes(stop, part, paths))
                async for changes in awatch(
                    *targets,
                    recursive=recursive,
                    debounce=self._debounce_ms,
                    watch_filter=wanted,
                    stop_event=stop,
                    rust_timeout=200,
                    yield_on_timeout=True,
                ):
                    seen(part)
                    if changes:
                        changed.set()
                restart.cancel()

        watchers = [self._spawn(watch("files")), self._spawn(watch("folders"))]
        try:
            while True:
                await changed.wait()
                changed.clear()
                await self.reload()
        finally:
            for task in watchers:
                task.cancel()

    def _watch_list(self, part: str) -> tuple[Path, ...]:
        watched = self.watched()
        return watched.folders if part == "folders" else watched.file_set

    async def _next_generation(self) -> None:
        generation = self.generation
        async with self._done:
            await self._done.wait_for(lambda: self.generation != generation)

    async def _stop_when_generation_changes(
        self, stop: asyncio.Event, part: str, paths: tuple[Path, ...]
    ) -> None:
        """Restart a watcher when a reload changes which paths it should watch."""
        while True:
            await self._next_generation()
            if self._watch_list(part) != paths:
                stop.set()
                return

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _say(self, line: str) -> None:
        if self._echo is not None:
            self._echo(line)

    async def close(self) -> None:
        """Stop watching and close the pools of replaced generations."""
        tasks = [*self._tasks, *([self._watcher] if self._watcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watcher = None
        pools, self._retiring = list(self._retiring), set()
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)


def _package_file(_change: object, path: str) -> bool:
    parts = Path(path).parts
    return not path.endswith(_SKIPPED_SUFFIXES) and not _SKIPPED_DIRS.intersection(parts)
