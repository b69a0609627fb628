"""The settings of what the edge records: ``access_log`` and ``inspector``.

``access_log`` turns on CloudFront's standard access log (AccessLogs.md),
written to a local file instead of an S3 bucket::

    access_log: logs/access.log              # relative to the config file's folder
    access_log: {path: logs/access.log, include_cookies: true}

``include_cookies`` is CloudFront's "Cookie logging" setting. Folders on the
way to the file that do not exist yet are created when the edge starts.

``inspector`` sets how many of the latest requests keep their trace (for the
inspector page and ``GET /requests``); each trace holds references to the
request, the response and the cached object it was served from::

    inspector: {requests: 100}                # the default; 0 keeps none
"""

from __future__ import annotations

from pathlib import Path

from edgesim.config.node import Node
from edgesim.config.schema import AccessLogSettings, InspectorSettings

__all__ = ["MAX_TRACED_REQUESTS", "read_access_log", "read_inspector"]

_ACCESS_LOG_KEYS = ("path", "include_cookies")
_INSPECTOR_KEYS = ("requests",)
# A trace keeps the request's values alive; beyond this the memory it holds is
# no longer a developer's "recent requests".
MAX_TRACED_REQUESTS = 100_000


def read_access_log(node: Node | None, base_dir: Path) -> AccessLogSettings | None:
    """The ``access_log:`` key: a file path, or ``{path, include_cookies}``; null is off."""
    if node is None or node.value is None:
        return None
    include_cookies = False
    where = node
    if isinstance(node.value, dict):
        entries = node.mapping(_ACCESS_LOG_KEYS, kind="access_log")
        where = node.required("path")
        if "include_cookies" in entries:
            include_cookies = entries["include_cookies"].boolean()
    elif not isinstance(node.value, str):
        raise node.error("expected a file path, or a mapping with path and include_cookies")
    path = (base_dir / Path(where.single_line("the access log path")).expanduser()).resolve()
    if path.is_dir():
        raise where.error(f"{str(path)!r} is a folder; access_log names the log file")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise where.error(f"{str(folder)!r} is a file, so the log can't be written under it")
    return AccessLogSettings(path, include_cookies)


def read_inspector(node: Node | None) -> InspectorSettings:
    """The ``inspector:`` key: ``{requests: N}``."""
    if node is None:
        return InspectorSettings()
    entries = node.mapping(_INSPECTOR_KEYS, kind="inspector")
    requests = InspectorSettings().requests
    if "requests" in entries:
        requests = entries["requests"].integer(0, MAX_TRACED_REQUESTS)
    return InspectorSettings(requests)
