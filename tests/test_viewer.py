"""Viewer simulation through a real edge, real origin and real workers.

Where CloudFront's headers appear follows adding-cloudfront-headers.md,
lambda-at-edge-function-restrictions.html ("CloudFront headers") and
edge-functions.md ("Access to geolocation and device data"): only when a
policy lists them; added after a Lambda@Edge viewer-request function and
before a CloudFront Function, so every function but a Lambda@Edge
viewer-request one, the cache key and the origin see them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from pathlib import Path

import httpx
import pytest

from edgesim.config import parse_config
from edgesim.config.schema import (
    CachePolicy,
    FunctionAssociation,
    FunctionConfig,
    OriginRequestPolicy,
    Selection,
)
from edgesim.errors import ConfigError
from edgesim.viewer import ViewerLocation, ViewerRule
from tests.conftest import EdgeFactory, RecordingOrigin, behavior

HANDLERS = Path(__file__).parent / "fixtures" / "edge"
GEO = frozenset(
    {
        "cloudfront-viewer-country",
        "cloudfront-viewer-city",
        "cloudfront-viewer-address",
        "cloudfront-viewer-latitude",
        "cloudfront-viewer-time-zone",
        "cloudfront-forwarded-proto",
    }
)
PARIS = ViewerRule(
    "paris",
    (ipaddress.ip_network("127.0.0.0/8"),),
    ViewerLocation(country="FR", city="Paris", time_zone="Europe/Paris", latitude=48.8566),
)


def forwarding(*names: str) -> OriginRequestPolicy:
    return OriginRequestPolicy(headers=Selection("allow", frozenset(names or GEO)))


def echo(event: str) -> tuple[tuple[str, FunctionAssociation], ...]:
    return ((event, FunctionAssociation("echo_event")),)


FUNCTIONS = {"echo_event": FunctionConfig("echo_event", "python3.11", HANDLERS, "hooks.echo_event")}


async def test_the_simulation_header_sets_ip_and_location_and_is_stripped(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/geo", "geo")
    edge = await make_edge(default=behavior(origin_request=forwarding()))
    response = await client.get(
        f"{edge.url}/geo",
        headers={
            "X-Edgesim-Viewer": "ip=198.51.100.7; country=DE; city=M%C3%BCnchen; "
            "latitude=48.1374; time-zone=Europe/Berlin"
        },
    )
    assert response.status_code == 200
    seen = origin.seen[-1].headers
    assert seen["cloudfront-viewer-country"] == "DE"
    assert seen["cloudfront-viewer-city"] == "M%C3%BCnchen"  # non-ASCII percent-encoded
    assert seen["cloudfront-viewer-latitude"] == "48.13740"
    assert seen["cloudfront-viewer-time-zone"] == "Europe/Berlin"
    assert seen["cloudfront-viewer-address"].startswith("198.51.100.7:")
    assert seen["cloudfront-forwarded-proto"] == "http"
    assert seen["x-forwarded-for"] == "198.51.100.7"
    assert "x-edgesim-viewer" not in seen


async def test_config_rules_locate_by_ip_and_the_country_can_key_the_cache(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/home", "home", Cache_Control="max-age=60")
    keyed = CachePolicy(headers=Selection("allow", frozenset({"cloudfront-viewer-country"})))
    edge = await make_edge(
        default=behavior(cache=keyed, origin_request=forwarding()),
        settings={"viewers": (PARIS,)},
    )
    paris = await client.get(f"{edge.url}/home")  # from 127.0.0.1: the rule says Paris
    seen = origin.seen[-1].headers
    assert (seen["cloudfront-viewer-country"], seen["cloudfront-viewer-city"]) == ("FR", "Paris")
    assert seen["cloudfront-viewer-address"].startswith("127.0.0.1:")
    berlin = await client.get(f"{edge.url}/home", headers={"X-Edgesim-Viewer": "country=DE"})
    again = await client.get(f"{edge.url}/home", headers={"X-Edgesim-Viewer": "paris"})
    assert paris.headers["x-cache"] == "Miss from cloudfront"
    assert berlin.headers["x-cache"] == "Miss from cloudfront"  # another country, another key
    assert again.headers["x-cache"] == "Hit from cloudfront"
    assert origin.seen[-1].headers["cloudfront-viewer-city"] == "Paris"  # a rule, overridden
    assert origin.hits("/home") == 2


async def test_viewer_request_sees_the_viewer_origin_request_sees_cloudfront(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    edge = await make_edge(
        behaviors=(
            behavior("/viewer/*", origin_request=forwarding(), functions=echo("viewer-request")),
            behavior("/origin/*", origin_request=forwarding(), functions=echo("origin-request")),
        ),
        functions=FUNCTIONS,
        settings={"viewers": (PARIS,)},
    )
    sent = {"X-Edgesim-Viewer": "ip=203.0.113.50", "CloudFront-Viewer-City": "Spoofed"}
    at_viewer = await client.get(f"{edge.url}/viewer/x", headers=sent)
    at_origin = await client.get(f"{edge.url}/origin/x", headers=sent)

    viewer_request = json.loads(at_viewer.text)["event"]["Records"][0]["cf"]["request"]
    assert viewer_request["clientIp"] == "203.0.113.50"
    assert "x-edgesim-viewer" not in viewer_request["headers"]
    assert "cloudfront-viewer-country" not in viewer_request["headers"]
    # Viewer-facing functions see what the viewer sent.
    assert viewer_request["headers"]["cloudfront-viewer-city"][0]["value"] == "Spoofed"

    origin_request = json.loads(at_origin.text)["event"]["Records"][0]["cf"]["request"]
    headers = origin_request["headers"]
    assert origin_request["clientIp"] == "203.0.113.50"
    assert headers["x-forwarded-for"][0]["value"] == "203.0.113.50"
    # 203.0.113.50 is outside the Paris rule: no location, so no country or city at all.
    assert "cloudfront-viewer-country" not in headers
    assert "cloudfront-viewer-city" not in headers
    assert headers["cloudfront-viewer-address"][0]["value"].startswith("203.0.113.50:")


async def test_nothing_is_added_that_no_policy_asks_for(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/plain", "plain")
    edge = await make_edge(settings={"viewers": (PARIS,)})
    response = await client.get(f"{edge.url}/plain", headers={"X-Edgesim-Viewer": "country=JP"})
    assert response.status_code == 200
    assert not [name for name in origin.seen[-1].headers if name.startswith("cloudfront-")]
    assert "x-edgesim-viewer" not in origin.seen[-1].headers


async def test_a_tls_viewer_gets_https_and_its_tls_headers(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    origin.reply("/tls", "tls")
    names = (
        "cloudfront-forwarded-proto",
        "cloudfront-viewer-tls",
        "cloudfront-viewer-ja3-fingerprint",
    )
    edge = await make_edge(default=behavior(origin_request=forwarding(*names)))
    tls = "TLSv1.3:TLS_AES_128_GCM_SHA256:fullHandshake"
    ja3 = "773906b0efdefa24a7f2b8eb6985bf37"
    await client.get(
        f"{edge.url}/tls", headers={"X-Edgesim-Viewer": f"tls={tls}; ja3_fingerprint={ja3}"}
    )
    seen = origin.seen[-1].headers
    assert seen["cloudfront-forwarded-proto"] == "https"
    assert seen["cloudfront-viewer-tls"] == tls
    assert seen["cloudfront-viewer-ja3-fingerprint"] == ja3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("contry=DE", "unknown key 'contry'; did you mean 'country'?"),
        ("country=Germany", "country: 'Germany' is not valid here (like DE)"),
        ("ip=300.1.1.1", "ip: '300.1.1.1' is not an IP address"),
        ("latitude=91", "latitude: must be a number from -90 to 90"),
        ("time_zone=Mars/Olympus", "not an IANA time zone"),
        ("tokyo", "no viewers: rule named 'tokyo' (named: paris)"),
        ("country=DE; metro_code=505", "only for the US"),
        ("ja3_fingerprint=773906b0efdefa24a7f2b8eb6985bf37", "set tls as well"),
        ("tls=TLSv1.3:X:quick", "is not CloudFront-Viewer-TLS"),
    ],
)
async def test_a_bad_simulation_header_gets_400_saying_why_and_the_edge_serves_on(
    origin: RecordingOrigin,
    make_edge: EdgeFactory,
    client: httpx.AsyncClient,
    value: str,
    message: str,
) -> None:
    origin.reply("/ok", "ok")
    edge = await make_edge(settings={"viewers": (PARIS,)})
    response = await client.get(f"{edge.url}/ok", headers={"X-Edgesim-Viewer": value})
    assert response.status_code == 400
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert message.replace("'", "&#x27;") in response.text
    assert not origin.seen
    assert (await client.get(f"{edge.url}/ok")).status_code == 200


VIEWERS = """\
origins:
  app: {{url: "http://127.0.0.1:9"}}
default_behavior:
  origin: app
viewers:
  - name: berlin
    ip: [198.51.100.0/24, "2001:db8::/32"]
    country: DE
{extra}
"""


def load(extra: str) -> object:
    return parse_config(VIEWERS.format(extra=extra), filename="edge.yaml")


def test_viewer_rules_load_with_every_location_key() -> None:
    config = parse_config(
        VIEWERS.format(
            extra="""\
    country_name: Germany
    region: BE
    region_name: Berlin
    city: Berlin
    postal_code: "10115"
    time_zone: Europe/Berlin
    latitude: 52.52
    longitude: 13.405
    asn: 3320
  - ip: 192.0.2.1
    country: US
    metro_code: 505"""
        ),
        filename="edge.yaml",
    )
    first, second = config.viewers
    assert first.name == "berlin" and len(first.networks) == 2
    assert first.location == ViewerLocation(
        "DE", "Germany", "BE", "Berlin", "Berlin", "10115", "Europe/Berlin", 52.52, 13.405, 3320
    )
    assert second.name is None and second.location.metro_code == 505
    assert dataclasses.replace(config, viewers=()).viewers == ()


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("    contry: FR", ":9: viewers[0].contry:", "did you mean 'country'?"),
        ("    latitude: north", ":9: viewers[0].latitude:", "must be a number from -90 to 90"),
        ("    metro_code: 505", ":9: viewers[0].metro_code:", "only for the US"),
        ("    ja4_fingerprint: t13d1516h2_8daaf6152771_b186095e22b6", ":9:", "set tls"),
        ("  - country: FR", ":9: viewers[1]:", "needs ip"),
        ("  - ip: 10.0.0.1/8\n    country: FR", ":9: viewers[1].ip:", "not an IP address"),
        ("  - name: berlin\n    ip: 10.0.0.0/8", ":9: viewers[1].name:", "duplicate viewer"),
        ("    time_zone: Europe/Atlantis", ":9: viewers[0].time_zone:", "IANA time zone"),
    ],
)
def test_bad_viewer_rules_name_file_line_and_key(extra: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(extra)
    text = str(caught.value)
    assert text.startswith("edge.yaml") and where in text and message in text, text


def test_a_cache_policy_cannot_key_on_what_cloudfront_keeps_out_of_keys() -> None:
    text = """\
origins:
  app: {url: "http://127.0.0.1:9"}
default_behavior:
  origin: app
  cache: {headers: [cloudfront-viewer-country, cloudfront-viewer-address]}
"""
    with pytest.raises(ConfigError, match="cloudfront-viewer-address can't be in a cache policy"):
        parse_config(text, filename="edge.yaml")


async def test_the_shipped_example_simulates_its_viewers(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient
) -> None:
    from edgesim.config import load_config

    example = load_config(Path(__file__).parent.parent / "configs" / "example.yaml")
    assert [rule.name for rule in example.viewers] == ["paris", "tokyo", "secure-us"]
    geo = next(b for b in example.behaviors if b.path_pattern == "/geo/*")
    origin.reply("/geo/", "geo")
    edge = await make_edge(
        behaviors=(dataclasses.replace(geo, origin="app"),),
        settings={"viewers": example.viewers},
    )
    await client.get(f"{edge.url}/geo/")
    assert origin.seen[-1].headers["cloudfront-viewer-city"] == "Paris"
    tokyo = await client.get(f"{edge.url}/geo/", headers={"X-Edgesim-Viewer": "tokyo"})
    assert tokyo.headers["x-cache"] == "Miss from cloudfront"  # keyed on the country
    seen = origin.seen[-1].headers
    assert (seen["cloudfront-viewer-country"], seen["cloudfront-viewer-time-zone"]) == (
        "JP",
        "Asia/Tokyo",
    )


# -- CloudFront Functions see CloudFront's headers --------------------------------------

CFF_ECHO_REQUEST = """
function handler(event) {
  return {statusCode: 200, body: JSON.stringify(event.request.headers)};
}
"""
CFF_ECHO_RESPONSE = """
function handler(event) {
  var response = event.response;
  response.body = JSON.stringify(event.request.headers);
  return response;
}
"""


def cloudfront_function(tmp_path: Path, name: str, code: str) -> FunctionConfig:
    (tmp_path / f"{name}.js").write_text(code)
    return FunctionConfig(name, "cloudfront-js-2.0", tmp_path / f"{name}.js", "handler")


async def test_a_cloudfront_function_at_viewer_request_sees_what_the_policy_asks_for(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # example-function-redirect-url.md: the header must be in a cache policy or an
    # origin request policy for CloudFront to add it to the request the function gets.
    at_viewer = (("viewer-request", FunctionAssociation("cff")),)
    edge = await make_edge(
        behaviors=(
            behavior("/asked/*", origin_request=forwarding(), functions=at_viewer),
            behavior("/keyed/*", cache=keyed_on_country(), functions=at_viewer),
            behavior("/plain/*", functions=at_viewer),
        ),
        functions={"cff": cloudfront_function(tmp_path, "cff", CFF_ECHO_REQUEST)},
        settings={"viewers": (PARIS,)},
    )
    spoofed = {"CloudFront-Viewer-Country": "DE", "CloudFront-Viewer-City": "Spoofed"}
    asked = (await client.get(f"{edge.url}/asked/x", headers=spoofed)).json()
    # CloudFront's values (the Paris rule for 127.0.0.1), not what the viewer sent.
    assert asked["cloudfront-viewer-country"] == {"value": "FR"}
    assert asked["cloudfront-viewer-city"] == {"value": "Paris"}
    assert asked["cloudfront-viewer-address"]["value"].startswith("127.0.0.1:")
    assert asked["cloudfront-forwarded-proto"] == {"value": "http"}

    simulated = await client.get(f"{edge.url}/keyed/x", headers={"X-Edgesim-Viewer": "country=JP"})
    seen = simulated.json()
    assert seen["cloudfront-viewer-country"] == {"value": "JP"}
    assert "cloudfront-viewer-city" not in seen  # only what the cache policy lists
    assert "x-edgesim-viewer" not in seen

    # No policy asks: the function sees only what the viewer sent, as any header.
    plain = (await client.get(f"{edge.url}/plain/x", headers=spoofed)).json()
    assert plain["cloudfront-viewer-country"] == {"value": "DE"}
    assert "cloudfront-viewer-address" not in plain
    assert origin.seen == []  # every answer was the function's


def keyed_on_country() -> CachePolicy:
    return CachePolicy(headers=Selection("allow", frozenset({"cloudfront-viewer-country"})))


async def test_what_a_cloudfront_function_does_to_them_is_what_goes_on(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # AWS does not say CloudFront adds its headers again after the function; edgesim
    # keeps the function's request as it returned it, for the cache key and the origin.
    origin.reply("/x", "x", Cache_Control="max-age=60")
    code = """
    function handler(event) {
      var h = event.request.headers;
      h['x-was'] = {value: h['cloudfront-viewer-country'].value};
      if (h['cloudfront-viewer-country'].value === 'JP') {
        h['cloudfront-viewer-country'] = {value: 'XX'};
      }
      delete h['cloudfront-viewer-city'];
      return event.request;
    }
    """
    edge = await make_edge(
        default=behavior(
            cache=keyed_on_country(),
            origin_request=forwarding(*GEO, "x-was"),
            functions=(("viewer-request", FunctionAssociation("cff")),),
        ),
        functions={"cff": cloudfront_function(tmp_path, "cff", code)},
        settings={"viewers": (PARIS,)},
    )
    await client.get(f"{edge.url}/x")
    seen = origin.seen[-1].headers
    assert (seen["x-was"], seen["cloudfront-viewer-country"]) == ("FR", "FR")
    assert "cloudfront-viewer-city" not in seen
    await client.get(f"{edge.url}/x", headers={"X-Edgesim-Viewer": "country=JP"})
    assert origin.seen[-1].headers["cloudfront-viewer-country"] == "XX"
    again = await client.get(f"{edge.url}/x", headers={"X-Edgesim-Viewer": "country=JP"})
    assert again.headers["x-cache"] == "Hit from cloudfront"  # keyed on what it set
    assert origin.hits("/x") == 2


async def test_viewer_response_functions_see_them_in_the_request(
    origin: RecordingOrigin, make_edge: EdgeFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # functions-event-structure.md's viewer-response example carries
    # cloudfront-viewer-country in event.request.headers.
    origin.reply("/x", "origin body")
    edge = await make_edge(
        default=behavior(
            origin_request=forwarding("cloudfront-viewer-country"),
            functions=(("viewer-response", FunctionAssociation("cff")),),
        ),
        functions={"cff": cloudfront_function(tmp_path, "cff", CFF_ECHO_RESPONSE)},
    )
    response = await client.get(f"{edge.url}/x", headers={"X-Edgesim-Viewer": "country=BR"})
    assert response.json()["cloudfront-viewer-country"] == {"value": "BR"}
    assert origin.seen[-1].headers["cloudfront-viewer-country"] == "BR"


def test_the_rules_table_says_who_sees_them() -> None:
    from edgesim.hooks import FUNCTION_RULES, HOOK_RULES, EventType

    seen = {event.value: rule.sees_cloudfront_headers for event, rule in HOOK_RULES.items()}
    assert seen == {
        "viewer-request": False,
        "origin-request": True,
        "origin-response": True,
        "viewer-response": True,
    }
    assert all(rule.sees_cloudfront_headers for rule in FUNCTION_RULES.values())
    assert set(FUNCTION_RULES) == {EventType.VIEWER_REQUEST, EventType.VIEWER_RESPONSE}
