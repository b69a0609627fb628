"""The access log through a real edge: CloudFront's standard format, read by a third-party parser.

The format (fields, order, tabs, %-encoding, header lines) is AccessLogs.md's,
summarised in cloudfront-semantics.md section 8; aws-log-parser (PyPI) is an
independent reader of CloudFront logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aws_log_parser import AwsLogParser, LogType

from edgesim.access_log import FIELDS, encode_field
from edgesim.config.schema import (
    ALL_METHODS,
    AccessLogSettings,
    Behavior,
    Config,
    CustomOrigin,
    Distribution,
    FunctionAssociation,
    FunctionConfig,
    Listen,
)
from edgesim.errors import ConfigError
from edgesim.service import Edge
from tests.conftest import EdgeFactory, RecordingOrigin, behavior, raw_request

HANDLERS = Path(__file__).parent / "fixtures" / "inspector"
DISTRIBUTION = Distribution("E2LOGTEST0001", "d1logtest.cloudfront.net", "SEA19-C1")


def _lines(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [line.split("\t") for line in text.splitlines()[2:]]


def _record(fields: list[str]) -> dict[str, str]:
    assert len(fields) == len(FIELDS) == 33
    return dict(zip(FIELDS, fields, strict=True))


async def _logged_edge(make_edge: EdgeFactory, path: Path, **options: object) -> Edge:
    settings = {"access_log": AccessLogSettings(path, **options), "distribution": DISTRIBUTION}  # type: ignore[arg-type]
    return await make_edge(default=behavior(allowed_methods=ALL_METHODS), settings=settings)


async def _flush(edge: Edge) -> None:
    assert edge.server.access_log is not None
    await edge.server.access_log.flush()


async def test_lines_are_cloudfronts_format_and_a_third_party_parser_reads_them(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    origin.reply(
        "/page", "hello", Cache_Control="max-age=60", Content_Type="text/html; charset=utf-8"
    )
    origin.reply("/form", "posted")
    log = tmp_path / "logs" / "edge" / "access.log"  # folders are created at start
    edge = await _logged_edge(make_edge, log)
    assert log.read_text() == "#Version: 1.0\n#Fields: " + " ".join(FIELDS) + "\n"
    agent = 'Mozilla/5.0 (X11; Linux) "quoted" <tag>'
    miss = await client.get(
        f"{edge.url}/page?q=a%20b&t=1",
        headers={
            "User-Agent": agent,
            "Referer": "http://ref.test/a b",
            "X-Forwarded-For": "203.0.113.7",
        },
    )
    hit = await client.get(f"{edge.url}/page?q=a%20b&t=1", headers={"User-Agent": agent})
    missing = await client.get(f"{edge.url}/nothing")
    posted = await client.post(f"{edge.url}/form", content=b"0123456789")
    await _flush(edge)

    records = [_record(fields) for fields in _lines(log)]
    assert [r["x-edge-request-id"] for r in records] == [
        r.headers["x-amz-cf-id"] for r in (miss, hit, missing, posted)
    ]
    first = records[0]
    assert first["x-edge-location"] == "SEA19-C1"
    assert first["cs(Host)"] == "d1logtest.cloudfront.net"
    assert first["x-host-header"] == edge.url.removeprefix("http://")
    assert first["c-ip"] == "127.0.0.1"
    assert first["cs-method"] == "GET"
    assert first["cs-uri-stem"] == "/page"
    # "%" itself is encoded, so the viewer's %20 reads %2520 (AccessLogs.md).
    assert first["cs-uri-query"] == "q=a%2520b&t=1"
    assert first["cs(User-Agent)"] == "Mozilla/5.0%20(X11;%20Linux)%20%22quoted%22%20%3Ctag%3E"
    assert first["cs(Referer)"] == "http://ref.test/a%20b"
    assert first["x-forwarded-for"] == "203.0.113.7"
    assert first["cs(Cookie)"] == "-"
    assert (
        first["sc-status"],
        first["x-edge-result-type"],
        first["x-edge-response-result-type"],
    ) == (
        "200",
        "Miss",
        "Miss",
    )
    assert first["x-edge-detailed-result-type"] == "Miss"
    assert first["cs-protocol"] == "http" and first["cs-protocol-version"] == "HTTP/1.1"
    assert (first["ssl-protocol"], first["ssl-cipher"], first["fle-status"]) == ("-", "-", "-")
    assert first["sc-content-type"] == "text/html;%20charset=utf-8"
    assert first["sc-content-len"] == "5"
    assert int(first["sc-bytes"]) > 5 and int(first["cs-bytes"]) > len("GET /page?q=a%20b&t=1")
    assert float(first["time-taken"]) >= float(first["time-to-first-byte"]) >= 0
    assert int(first["c-port"]) > 0
    assert [r["x-edge-result-type"] for r in records[1:]] == ["Hit", "Error", "Miss"]
    assert records[2]["sc-status"] == "404"
    assert int(records[3]["cs-bytes"]) >= len(b"POST /form HTTP/1.1\r\n\r\n0123456789")

    parsed = list(AwsLogParser(log_type=LogType.CloudFront).read_file(log))
    assert len(parsed) == 4
    entry = parsed[0]
    assert entry.user_agent == agent
    assert entry.uri_query == {"q": ["a%20b"], "t": ["1"]}
    assert entry.uri_stem == "/page"
    assert entry.status_code == 200
    assert entry.edge_location == "SEA19-C1"
    assert entry.edge_result_type == "Miss"
    assert entry.edge_request_id == miss.headers["x-amz-cf-id"]
    assert entry.host_header == edge.url.removeprefix("http://")
    assert entry.sent_bytes == int(first["sc-bytes"])
    assert entry.protocol_version == "HTTP/1.1"
    assert [e.edge_result_type for e in parsed[1:]] == ["Hit", "Error", "Miss"]
    assert [e.http_method for e in parsed] == ["GET", "GET", "GET", "POST"]


async def test_sc_bytes_is_what_the_viewer_received(
    origin: RecordingOrigin, make_edge: EdgeFactory, tmp_path: Path
) -> None:
    origin.reply("/exact", "x" * 1000, Cache_Control="max-age=60")
    edge = await _logged_edge(make_edge, tmp_path / "a.log")
    assert edge.address is not None
    sizes = []
    for _ in range(2):  # a miss, then a hit answered from the stored head
        raw = await raw_request(
            edge.address.port, b"GET /exact HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        sizes.append(len(raw))
    await _flush(edge)
    records = [_record(fields) for fields in _lines(tmp_path / "a.log")]
    assert [int(r["sc-bytes"]) for r in records] == sizes
    request_bytes = len(b"GET /exact HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert [int(r["cs-bytes"]) for r in records] == [request_bytes] * 2


async def test_each_request_logs_the_http_version_its_viewer_spoke(
    origin: RecordingOrigin, make_edge: EdgeFactory, tmp_path: Path
) -> None:
    origin.reply("/v", "v", Cache_Control="max-age=60")
    edge = await _logged_edge(make_edge, tmp_path / "v.log")
    assert edge.address is not None
    for version in (b"1.1", b"1.0", b"1.1"):
        raw = await raw_request(
            edge.address.port,
            b"GET /v HTTP/" + version + b"\r\nHost: h\r\nConnection: close\r\n\r\n",
        )
        assert raw.startswith(b"HTTP/1.1 200 ")
    await _flush(edge)
    records = [_record(fields) for fields in _lines(tmp_path / "v.log")]
    assert [r["cs-protocol-version"] for r in records] == ["HTTP/1.1", "HTTP/1.0", "HTTP/1.1"]


async def test_cookies_are_logged_only_with_cookie_logging(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    origin.reply("/c", "c")
    plain = await _logged_edge(make_edge, tmp_path / "plain.log")
    cookies = await _logged_edge(make_edge, tmp_path / "cookies.log", include_cookies=True)
    for edge in (plain, cookies):
        await client.get(f"{edge.url}/c", headers={"Cookie": "sid=abc 1; theme=dark"})
        await _flush(edge)
    assert _record(_lines(tmp_path / "plain.log")[0])["cs(Cookie)"] == "-"
    assert _record(_lines(tmp_path / "cookies.log")[0])["cs(Cookie)"] == "sid=abc%201;%20theme=dark"
    [entry] = AwsLogParser(log_type=LogType.CloudFront).read_file(tmp_path / "cookies.log")
    # The parser leaves values as logged (%-encoded) and keeps the space after ";".
    assert {k.strip(): v for k, v in entry.cookie.items()} == {"sid": "abc%201", "theme": "dark"}


async def test_ranges_not_modified_and_generated_responses(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    origin.reply("/r", "0123456789", Cache_Control="max-age=60", ETag='"e1"')
    log = tmp_path / "r.log"
    edge = await make_edge(
        behaviors=(
            behavior("/gen", functions=(("viewer-request", FunctionAssociation("redirect")),)),
        ),
        functions={
            "redirect": FunctionConfig("redirect", "python3.11", HANDLERS, "handlers.redirect")
        },
        settings={"access_log": AccessLogSettings(log)},
    )
    await client.get(f"{edge.url}/r")
    ranged = await client.get(f"{edge.url}/r", headers={"Range": "bytes=2-5"})
    assert ranged.status_code == 206
    not_modified = await client.get(f"{edge.url}/r", headers={"If-None-Match": '"e1"'})
    assert not_modified.status_code == 304
    generated = await client.get(f"{edge.url}/gen")
    assert generated.status_code == 302
    await _flush(edge)
    _, part, unchanged, made = (_record(f) for f in _lines(log))
    assert (part["sc-status"], part["sc-range-start"], part["sc-range-end"]) == ("206", "2", "5")
    assert part["sc-content-len"] == "4"
    assert (unchanged["sc-status"], unchanged["x-edge-result-type"]) == ("304", "Hit")
    assert unchanged["sc-range-start"] == "-"
    assert (made["sc-status"], made["x-edge-result-type"]) == ("302", "LambdaGeneratedResponse")


async def test_a_viewer_that_leaves_first_logs_000_and_error(
    origin: RecordingOrigin, make_edge: EdgeFactory, tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 5)
        return web.Response(text="late")

    origin.route("/slow", slow)
    edge = await _logged_edge(make_edge, tmp_path / "gone.log")
    assert edge.address is not None
    _, writer = await asyncio.open_connection("127.0.0.1", edge.address.port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    await writer.drain()
    while not origin.hits("/slow"):
        await asyncio.sleep(0.01)
    writer.close()
    log = edge.server.access_log
    assert log is not None
    for _ in range(200):
        await log.flush()
        if _lines(tmp_path / "gone.log"):
            break
        await asyncio.sleep(0.02)
    release.set()
    [record] = (_record(f) for f in _lines(tmp_path / "gone.log"))
    assert record["sc-status"] == "000"
    assert record["x-edge-result-type"] == "Error"
    assert record["x-edge-response-result-type"] == "Miss"
    assert record["x-edge-detailed-result-type"] == "ClientCommError"
    assert record["sc-bytes"] == "0"


async def test_lines_pending_at_stop_are_written_and_restarts_append(
    origin: RecordingOrigin, tmp_path: Path
) -> None:
    origin.reply("/s", "s")
    log = tmp_path / "stop.log"
    config = Config(
        origins={"app": CustomOrigin("app", "http", "127.0.0.1", origin.port)},
        default_behavior=Behavior("*", "app"),
        listen=Listen("127.0.0.1", 0),
        admin_listen=None,
        access_log=AccessLogSettings(log),
    )
    for run in range(2):
        edge = Edge(config)
        await edge.start()
        async with httpx.AsyncClient() as client:
            await client.get(f"{edge.url}/s?run={run}")
        await edge.stop(grace=1.0)  # well within the flush interval: stop writes it
    text = log.read_text()
    assert text.count("#Version: 1.0\n") == 1
    assert [_record(f)["cs-uri-query"] for f in _lines(log)] == ["run=0", "run=1"]


async def test_an_unwritable_log_stops_the_edge_from_starting_with_a_clear_error(
    origin: RecordingOrigin,
) -> None:
    config = Config(
        origins={"app": CustomOrigin("app", "http", "127.0.0.1", origin.port)},
        default_behavior=Behavior("*", "app"),
        listen=Listen("127.0.0.1", 0),
        admin_listen=None,
        access_log=AccessLogSettings(Path("/dev/full")),  # every write: no space left
    )
    edge = Edge(dataclasses.replace(config, source=Path("edge.yaml")))
    with pytest.raises(ConfigError) as error:
        await edge.start()
    assert str(error.value) == (
        "edge.yaml: access_log: can't write the access log '/dev/full': No space left on device"
    )
    assert edge.address is None


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("", "-"),
        (None, "-"),
        ("plain/path-1.2_~x", "plain/path-1.2_%7Ex"),
        ("a b\tc\nd", "a%20b%09c%0Ad"),
        ("<>\"#%{}|\\^~[]`'", "%3C%3E%22%23%25%7B%7D%7C%5C%5E%7E%5B%5D%60%27"),
        ("?&=;:,@!$*+()/", "?&=;:,@!$*+()/"),
        ("caf\xe9", "caf%E9"),  # a latin-1 header byte
        ("\u20ac", "%E2%82%AC"),  # beyond latin-1: its UTF-8 bytes
        ("\x7f", "%7F"),
    ],
)
def test_field_encoding(value: str | None, encoded: str) -> None:
    """Bytes 0-32 and 127-255 and <>"#%{}|\\^~[]`' and space are %-encoded (AccessLogs.md)."""
    assert encode_field(value) == encoded


async def test_a_simulated_https_viewer_logs_its_address_protocol_and_cipher(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    origin.reply("/geo", "g")
    edge = await _logged_edge(make_edge, tmp_path / "geo.log")
    await client.get(
        f"{edge.url}/geo",
        headers={
            "X-Edgesim-Viewer": "ip=203.0.113.9; tls=TLSv1.3:TLS_AES_128_GCM_SHA256:fullHandshake"
        },
    )
    await _flush(edge)
    [record] = (_record(f) for f in _lines(tmp_path / "geo.log"))
    assert record["c-ip"] == "203.0.113.9"
    assert (record["cs-protocol"], record["ssl-protocol"], record["ssl-cipher"]) == (
        "https",
        "TLSv1.3",
        "TLS_AES_128_GCM_SHA256",
    )
