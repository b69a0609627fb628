"""The one ``OriginClient`` the server wires in: dispatches on the origin's kind."""

from __future__ import annotations

from edgesim.config.schema import CustomOrigin, DirectoryOrigin, Origin
from edgesim.models import Request, Response
from edgesim.origins import StartedFetch
from edgesim.origins.directory import DirectoryOriginClient
from edgesim.origins.http import HttpOriginClient

__all__ = ["OriginClients", "create_origin_client"]


class OriginClients:
    """Sends ``CustomOrigin`` fetches to the HTTP pool, ``DirectoryOrigin`` ones to the folder."""

    def __init__(
        self,
        http: HttpOriginClient | None = None,
        directory: DirectoryOriginClient | None = None,
    ) -> None:
        self.http = http or HttpOriginClient()
        self.directory = directory or DirectoryOriginClient()

    async def fetch(
        self, origin: Origin, request: Request, started: StartedFetch | None = None
    ) -> Response:
        """See ``edgesim.origins.OriginClient.fetch``."""
        if isinstance(origin, CustomOrigin):
            return await self.http.fetch(origin, request, started)
        if isinstance(origin, DirectoryOrigin):
            return await self.directory.fetch(origin, request)
        raise TypeError(f"unknown origin type {type(origin).__name__}")

    def start_fetch(self, origin: Origin, request: Request) -> StartedFetch | None:
        """HTTP origins only: a folder origin answers within ``fetch`` anyway."""
        if isinstance(origin, CustomOrigin):
            return self.http.start_fetch(origin, request)
        return None

    def started_response(self, started: StartedFetch) -> Response | None:
        return self.http.started_response(started)

    async def close(self) -> None:
        await self.http.close()
        await self.directory.close()


def create_origin_client(
    *, max_idle_per_host: int = 100, keepalive_timeout: float = 5.0
) -> OriginClients:
    """An origin client for every origin kind, with CloudFront's keep-alive defaults."""
    return OriginClients(
        HttpOriginClient(max_idle_per_host=max_idle_per_host, keepalive_timeout=keepalive_timeout)
    )
