"""The one ``OriginClient`` the server wires in: dispatches on the origin's kind."""

from __future__ import annotations

from edgesim.config.schema import CustomOrigin, DirectoryOrigin, Origin
from edgesim.models import Request, Response
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

    async def fetch(self, origin: Origin, request: Request) -> Response:
        """See ``edgesim.origins.OriginClient.fetch``."""
        if isinstance(origin, CustomOrigin):
            return await self.http.fetch(origin, request)
        if isinstance(origin, DirectoryOrigin):
            return await self.directory.fetch(origin, request)
        raise TypeError(f"unknown origin type {type(origin).__name__}")

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
