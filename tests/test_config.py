"""The config loader: real files in YAML, JSON and TOML, and every error naming file, line, key."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from edgesim.config import load_config, parse_config, parse_listen, parse_size, quick_config
from edgesim.config.schema import (
    ALL_METHODS,
    LEGACY_TTLS,
    MANAGED_CACHE_POLICIES,
    CachePolicy,
    CacheSettings,
    Config,
    CustomOrigin,
    DirectoryOrigin,
    Distribution,
    FunctionAssociation,
    Listen,
    Selection,
)
from edgesim.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

# The config format as documented, comments and all.
SPEC_EXAMPLE = """\
listen: 127.0.0.1:8080
admin_listen: 127.0.0.1:8081        # control API, loopback by default
distribution:
  id: E2EXAMPLE0001                  # shown in events and logs
  domain: d1example.cloudfront.net   # shown in Via / events
  pop: LHR62-C2                      # X-Amz-Cf-Pop and log edge location
cache:
  max_size: 512MiB                   # whole-cache byte budget (LRU beyond it)
  max_object_size: 64MiB             # larger responses stream through uncached
  error_caching_min_ttl: 10          # seconds
origins:                             # required, at least one
  app:
    url: http://127.0.0.1:3000       # custom origin
    headers: {x-origin-verify: abc}  # custom origin headers
    connect_timeout: 10              # seconds, 1-10
    read_timeout: 30                 # seconds, 1-120
    connection_attempts: 3           # 1-3
  site:
    directory: ./public              # a local folder served like an S3 origin
behaviors:                           # optional list, in order; the first match wins
  - path: /api/*
    origin: app
    allowed_methods: all
    cached_methods: [GET, HEAD]
    compress: false
    cache:
      min_ttl: 0
      default_ttl: 0
      max_ttl: 0
      query_strings: all
      headers: [authorization]
      cookies: none
      accept_encoding_gzip: false
      accept_encoding_brotli: false
    origin_request:
      query_strings: all
      headers: all
      cookies: [a]
    functions: {}
default_behavior:                    # required
  origin: site
  cache: {min_ttl: 0, default_ttl: 86400, max_ttl: 31536000}
"""

MINIMAL = """\
origins:
  app:
    url: http://127.0.0.1:3000
default_behavior:
  origin: app
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(folder: Path, text: str, name: str = "edge.yaml") -> ConfigError:
    path = write(folder, name, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


def assert_error(error: ConfigError, file: Path, line: int, key: str, fragment: str) -> None:
    """The message starts with file:line: key: and says ``fragment``."""
    assert (error.file, error.line, error.path) == (str(file), line, key), str(error)
    assert str(error).startswith(f"{file}:{line}: {key}: "), str(error)
    assert fragment in error.message, str(error)


# --- the documented example ---


def test_spec_example_loads_with_every_value(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    path = write(tmp_path, "edge.yaml", SPEC_EXAMPLE)

    config = load_config(path)

    assert config.source == path
    assert config.listen == Listen("127.0.0.1", 8080)
    assert config.admin_listen == Listen("127.0.0.1", 8081)
    assert config.distribution == Distribution(
        "E2EXAMPLE0001", "d1example.cloudfront.net", "LHR62-C2"
    )
    assert config.cache == CacheSettings(512 * 2**20, 64 * 2**20, 10)
    assert config.origins == {
        "app": CustomOrigin(
            "app",
            "http",
            "127.0.0.1",
            3000,
            "",
            headers=(("x-origin-verify", "abc"),),
            connect_timeout=10,
            read_timeout=30,
            connection_attempts=3,
        ),
        "site": DirectoryOrigin("site", (tmp_path / "public").resolve()),
    }
    (api,) = config.behaviors
    assert api.path_pattern == "/api/*"
    assert api.origin == "app"
    assert api.allowed_methods == ALL_METHODS
    assert api.cached_methods == {"GET", "HEAD"}
    assert api.compress is False
    assert api.cache == CachePolicy(
        0,
        0,
        0,
        query_strings=Selection("all"),
        headers=Selection("allow", frozenset({"authorization"})),
        cookies=Selection("none"),
    )
    assert api.origin_request.query_strings == Selection("all")
    assert api.origin_request.headers == Selection("all")
    assert api.origin_request.cookies == Selection("allow", frozenset({"a"}))
    assert api.functions == ()
    default = config.default_behavior
    assert (default.path_pattern, default.origin) == ("*", "site")
    assert (default.cache.min_ttl, default.cache.default_ttl, default.cache.max_ttl) == (
        0,
        86_400,
        31_536_000,
    )
    assert default.allowed_methods == {"GET", "HEAD"}
    assert config.all_behaviors == (api, default)


def test_spec_example_in_json_and_toml_gives_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    from_yaml = load_config(write(tmp_path, "edge.yaml", SPEC_EXAMPLE))
    data = {
        "listen": "127.0.0.1:8080",
        "admin_listen": "127.0.0.1:8081",
        "distribution": {
            "id": "E2EXAMPLE0001",
            "domain": "d1example.cloudfront.net",
            "pop": "LHR62-C2",
        },
        "cache": {"max_size": "512MiB", "max_object_size": "64MiB", "error_caching_min_ttl": 10},
        "origins": {
            "app": {
                "url": "http://127.0.0.1:3000",
                "headers": {"x-origin-verify": "abc"},
                "connect_timeout": 10,
                "read_timeout": 30,
                "connection_attempts": 3,
            },
            "site": {"directory": "./public"},
        },
        "behaviors": [
            {
                "path": "/api/*",
                "origin": "app",
                "allowed_methods": "all",
                "cached_methods": ["GET", "HEAD"],
                "compress": False,
                "cache": {
                    "min_ttl": 0,
                    "default_ttl": 0,
                    "max_ttl": 0,
                    "query_strings": "all",
                    "headers": ["authorization"],
                    "cookies": "none",
                },
                "origin_request": {"query_strings": "all", "headers": "all", "cookies": ["a"]},
            }
        ],
        "default_behavior": {
            "origin": "site",
            "cache": {"min_ttl": 0, "default_ttl": 86400, "max_ttl": 31536000},
        },
    }
    toml = """\
    listen = "127.0.0.1:8080"
    admin_listen = "127.0.0.1:8081"

    [distribution]
    id = "E2EXAMPLE0001"
    domain = "d1example.cloudfront.net"
    pop = "LHR62-C2"

    [cache]
    max_size = "512MiB"
    max_object_size = "64MiB"
    error_caching_min_ttl = 10

    [origins.app]
    url = "http://127.0.0.1:3000"
    headers = { x-origin-verify = "abc" }
    connect_timeout = 10
    read_timeout = 30
    connection_attempts = 3

    [origins.site]
    directory = "./public"

    [[behaviors]]
    path = "/api/*"
    origin = "app"
    allowed_methods = "all"
    cached_methods = ["GET", "HEAD"]
    compress = false
    cache = { min_ttl = 0, default_ttl = 0, max_ttl = 0, query_strings = "all", headers = ["authorization"], cookies = "none" }

    [behaviors.origin_request]
    query_strings = "all"
    headers = "all"
    cookies = ["a"]

    [default_behavior]
    origin = "site"
    cache = { min_ttl = 0, default_ttl = 86400, max_ttl = 31536000 }
    """  # noqa: E501
    from_json = load_config(write(tmp_path, "edge.json", json.dumps(data, indent="\t")))
    from_toml = load_config(write(tmp_path, "edge.toml", toml))

    def without_source(config: Config) -> Config:
        return dataclasses.replace(config, source=None)

    assert without_source(from_json) == without_source(from_yaml)
    assert without_source(from_toml) == without_source(from_yaml)
    assert from_json.source == tmp_path / "edge.json"


def test_the_shipped_example_loads_and_serves_configs_public() -> None:
    config = load_config(REPO / "configs" / "example.yaml")

    site = config.origins[config.default_behavior.origin]
    assert isinstance(site, DirectoryOrigin)
    assert site.directory == REPO / "configs" / "public"
    assert (site.directory / "index.html").is_file()
    assert (site.directory / "css" / "site.css").is_file()
    api, geo = config.behaviors
    assert (api.path_pattern, geo.path_pattern) == ("/api/*", "/geo/*")
    app = config.origins[api.origin]
    assert isinstance(app, CustomOrigin)
    assert (app.scheme, app.host, app.port) == ("http", "127.0.0.1", 3000)
    assert (api.cache.min_ttl, api.cache.default_ttl, api.cache.max_ttl) == (0, 0, 0)


# --- errors: file, line, key path ---

ERROR_CASES = [
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        behaviors:
          - path: /api/*
            origin: app
            cache:
              min_tll: 5
        default_behavior: {origin: app}
        """,
        7,
        "behaviors[0].cache.min_tll",
        "unknown key; did you mean 'min_ttl'?",
        id="misspelt-key",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        behaviours: []
        """,
        4,
        "behaviours",
        "did you mean 'behaviors'?",
        id="misspelt-top-level-key",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          zzz: 1
        """,
        5,
        "default_behavior.zzz",
        "unknown key; expected one of: origin, allowed_methods",
        id="unknown-key-lists-choices",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          compress: "yes"
        """,
        5,
        "default_behavior.compress",
        "expected true or false, not a string",
        id="wrong-type",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          compress: true
        """,
        3,
        "default_behavior.origin",
        "missing required key",
        id="missing-required-key",
    ),
    pytest.param(
        """\
        # no origins at all
        default_behavior: {origin: app}
        """,
        2,
        "origins",
        "missing required key",
        id="missing-origins",
    ),
    pytest.param(
        """\
        origins: {}
        default_behavior: {origin: app}
        """,
        1,
        "origins",
        "at least one origin",
        id="no-origins",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        behaviors:
          - path: /api/*
            origin: ap
        default_behavior: {origin: app}
        """,
        5,
        "behaviors[0].origin",
        "no origin named 'ap'; did you mean 'app'?",
        id="unknown-origin",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        behaviors:
          - path: /api/*
            origin: app
          - path: api/*
            origin: app
        default_behavior: {origin: app}
        """,
        6,
        "behaviors[1].path",
        "duplicate path pattern '/api/*' (also at behaviors[0])",
        id="duplicate-path-pattern",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        behaviors:
          - path: /my files/*
            origin: app
        default_behavior: {origin: app}
        """,
        4,
        "behaviors[0].path",
        "' ' not allowed in a path pattern",
        id="path-pattern-character",
    ),
    pytest.param(
        f"""\
        origins:
          app: {{url: http://127.0.0.1:3000}}
        behaviors:
          - origin: app
            path: /{"a" * 255}
        default_behavior: {{origin: app}}
        """,
        5,
        "behaviors[0].path",
        "at most 255 characters",
        id="path-pattern-length",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        behaviors:
          - origin: app
        default_behavior: {origin: app}
        """,
        4,
        "behaviors[0].path",
        "missing required key",
        id="behavior-without-path",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          path: /x
          origin: app
        """,
        4,
        "default_behavior.path",
        "the default behavior has no path",
        id="default-behavior-path",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache:
            min_ttl: 100
            default_ttl: 50
        """,
        7,
        "default_behavior.cache.default_ttl",
        "default_ttl (50) is less than min_ttl (100)",
        id="ttl-default-below-min",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache:
            default_ttl: 600
            max_ttl: 60
        """,
        7,
        "default_behavior.cache.max_ttl",
        "max_ttl (60) is less than default_ttl (600)",
        id="ttl-max-below-default",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache:
            min_ttl: 100
            max_ttl: 60
        """,
        7,
        "default_behavior.cache.max_ttl",
        "max_ttl (60) is less than min_ttl (100)",
        id="ttl-max-below-min",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache: {min_ttl: -1}
        """,
        5,
        "default_behavior.cache.min_ttl",
        "must be at least 0",
        id="ttl-negative",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache:
            headers: all
        """,
        6,
        "default_behavior.cache.headers",
        "a cache policy can include only listed headers",
        id="cache-policy-all-headers",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache:
            headers: {except: [cookie]}
        """,
        6,
        "default_behavior.cache.headers",
        "a cache policy can include only listed headers",
        id="cache-policy-except-headers",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache:
            query_strings: [a, b, c, d, e, f, g, h, i, j, k]
        """,
        6,
        "default_behavior.cache.query_strings",
        "at most 10 names (CloudFront quota), not 11",
        id="quota-names",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache:
            cookies: {exept: [a]}
        """,
        6,
        "default_behavior.cache.cookies.exept",
        "did you mean 'except'?",
        id="selection-misspelt-except",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache:
            headers:
              - x-ok
              - "bad header"
        """,
        8,
        "default_behavior.cache.headers[1]",
        "'bad header' is not a valid header name",
        id="header-name-in-policy",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cache: CachingOptimised
        """,
        5,
        "default_behavior.cache",
        "no managed cache policy named 'CachingOptimised'; did you mean 'CachingOptimized'?",
        id="managed-policy-misspelt",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          origin_request:
            headers: [Authorization]
        """,
        6,
        "default_behavior.origin_request.headers",
        "can't forward Authorization",
        id="origin-request-authorization",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          allowed_methods: [GET, POST]
        """,
        5,
        "default_behavior.allowed_methods",
        "allowed_methods must be [GET, HEAD], [GET, HEAD, OPTIONS] or all",
        id="allowed-methods-set",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          allowed_methods:
            - GET
            - HAED
        """,
        7,
        "default_behavior.allowed_methods[1]",
        "unknown method 'HAED'; did you mean 'HEAD'?",
        id="unknown-method",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          cached_methods: [GET, HEAD, OPTIONS]
        """,
        5,
        "default_behavior.cached_methods",
        "OPTIONS can be cached only if allowed_methods allows it",
        id="cached-options-not-allowed",
    ),
    pytest.param(
        """\
        origins:
          site:
            directory: ./no-such-folder
        default_behavior: {origin: site}
        """,
        3,
        "origins.site.directory",
        "does not exist",
        id="directory-missing",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: http://127.0.0.1:3000
            directory: .
        default_behavior: {origin: app}
        """,
        4,
        "origins.app.directory",
        "either url or directory, not both",
        id="origin-url-and-directory",
    ),
    pytest.param(
        """\
        origins:
          app:
            headers: {x-a: b}
        default_behavior: {origin: app}
        """,
        2,
        "origins.app",
        "an origin needs url",
        id="origin-without-url",
    ),
    pytest.param(
        """\
        origins:
          site:
            directory: .
            read_timeout: 5
        default_behavior: {origin: site}
        """,
        4,
        "origins.site.read_timeout",
        "unknown key for a directory origin",
        id="directory-origin-timeout",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: ftp://127.0.0.1:3000
        default_behavior: {origin: app}
        """,
        3,
        "origins.app.url",
        "starts with http:// or https://",
        id="url-scheme",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: http://127.0.0.1:3000/v1?x=1
        default_behavior: {origin: app}
        """,
        3,
        "origins.app.url",
        "can't have a query string or fragment",
        id="url-query",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: http://127.0.0.1:0
        default_behavior: {origin: app}
        """,
        3,
        "origins.app.url",
        "invalid port",
        id="url-port-zero",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: http://127.0.0.1:3000
            headers:
              x-ok: fine
              Host: example.com
        default_behavior: {origin: app}
        """,
        6,
        "origins.app.headers.Host",
        "CloudFront can't add a custom origin header named 'Host'",
        id="forbidden-origin-header",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: http://127.0.0.1:3000
            headers: {X-Amz-Date: "1"}
        default_behavior: {origin: app}
        """,
        4,
        "origins.app.headers.X-Amz-Date",
        "CloudFront can't add a custom origin header",
        id="forbidden-origin-header-prefix",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: http://127.0.0.1:3000
            connect_timeout: 11
        default_behavior: {origin: app}
        """,
        4,
        "origins.app.connect_timeout",
        "must be 1 to 10",
        id="connect-timeout-range",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: http://127.0.0.1:3000
            connection_attempts: 0
        default_behavior: {origin: app}
        """,
        4,
        "origins.app.connection_attempts",
        "must be 1 to 3",
        id="connection-attempts-range",
    ),
    pytest.param(
        """\
        origins:
          app:
            url: http://127.0.0.1:3000
            read_timeout: 121
        default_behavior: {origin: app}
        """,
        4,
        "origins.app.read_timeout",
        "must be 1 to 120",
        id="read-timeout-range",
    ),
    pytest.param(
        """\
        listen: 127.0.0.1:99999
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        """,
        1,
        "listen",
        "the port must be a number from 0 to 65535",
        id="listen-port",
    ),
    pytest.param(
        """\
        listen: 127.0.0.1:8080
        admin_listen: 127.0.0.1:8080
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        """,
        2,
        "admin_listen",
        "can't both listen on 127.0.0.1:8080",
        id="admin-listen-clash",
    ),
    pytest.param(
        """\
        distribution:
          id: e2example
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        """,
        2,
        "distribution.id",
        "is not a distribution id",
        id="distribution-id",
    ),
    pytest.param(
        """\
        distribution:
          pop: ""
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        """,
        2,
        "distribution.pop",
        "pop must be a non-empty single line",
        id="distribution-pop-empty",
    ),
    pytest.param(
        """\
        cache:
          max_size: 12 parsecs
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        """,
        2,
        "cache.max_size",
        "unknown size unit 'parsecs'",
        id="size-unit",
    ),
    pytest.param(
        """\
        cache:
          max_size: 1MiB
          max_object_size: 2MiB
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        """,
        3,
        "cache.max_object_size",
        "max_object_size (2097152) is larger than max_size (1048576)",
        id="object-larger-than-cache",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          origin: app
        """,
        5,
        "default_behavior.origin",
        "duplicate key (first given on line 4)",
        id="duplicate-key",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: app
          functions:
            viewer-request: auth
        """,
        5,
        "default_behavior.functions",
        "no functions are configured",
        id="functions-not-configured",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior:
          origin: [app
        """,
        5,
        "",
        "invalid YAML",
        id="yaml-syntax",
    ),
    pytest.param(
        """\
        origins: &all
          app: {url: http://127.0.0.1:3000}
          loop: *all
        default_behavior: {origin: app}
        """,
        3,
        "origins.loop",
        "an alias refers to the mapping or list that contains it",
        id="recursive-alias",
    ),
    pytest.param(
        """\
        # just a comment

        - origins
        """,
        3,
        "",
        "the top level must be a mapping of keys, not a list",
        id="top-level-list",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), ERROR_CASES)
def test_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, fragment: str
) -> None:
    error = load_error(tmp_path, text)

    if key:
        assert_error(error, tmp_path / "edge.yaml", line, key, fragment)
    else:
        assert (error.file, error.line, error.path) == (str(tmp_path / "edge.yaml"), line, "")
        assert str(error).startswith(f"{tmp_path / 'edge.yaml'}:{line}: {fragment}")


def test_misspelt_key_message_reads_as_documented(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        behaviors:
          - path: /api/*
            origin: app
            cache:
              min_tll: 5
        default_behavior: {origin: app}
        """,
    )

    assert str(error) == (
        f"{tmp_path / 'edge.yaml'}:7: behaviors[0].cache.min_tll: "
        "unknown key; did you mean 'min_ttl'?"
    )


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    error = load_error(tmp_path, "# nothing here\n")

    assert str(error) == f"{tmp_path / 'edge.yaml'}:1: the config is empty"


def test_json_errors_have_lines(tmp_path: Path) -> None:
    unknown = load_error(
        tmp_path,
        '{\n\t"origins": {"app": {"url": "http://127.0.0.1:3000"}},\n'
        '\t"default_behavior": {\n\t\t"origin": "app",\n\t\t"compres": true\n\t}\n}\n',
        name="edge.json",
    )
    duplicate = load_error(
        tmp_path,
        '{\n  "origins": {"app": {"url": "http://127.0.0.1:3000"}},\n'
        '  "default_behavior": {"origin": "app"},\n  "origins": {}\n}\n',
        name="edge.json",
    )
    syntax = load_error(tmp_path, '{\n  "origins": {\n  }\n  "x": 1\n}\n', name="edge.json")

    assert_error(
        unknown, tmp_path / "edge.json", 5, "default_behavior.compres", "did you mean 'compress'?"
    )
    assert_error(duplicate, tmp_path / "edge.json", 4, "origins", "first given on line 2")
    assert (syntax.line, syntax.path) == (4, "")
    assert "invalid JSON" in syntax.message


def test_toml_errors_have_lines(tmp_path: Path) -> None:
    unknown = load_error(
        tmp_path,
        """\
        [origins.app]
        url = "http://127.0.0.1:3000"

        [[behaviors]]
        path = "/a/*"
        origin = "app"

        [[behaviors]]
        path = "/b/*"
        origin = "app"

        [behaviors.cache]
        min_ttl = 0
        max_tll = 5

        [default_behavior]
        origin = "app"
        """,
        name="edge.toml",
    )
    syntax = load_error(tmp_path, '[origins.app]\nurl = "http://x"\nbad line\n', name="edge.toml")

    assert_error(
        unknown,
        tmp_path / "edge.toml",
        14,
        "behaviors[1].cache.max_tll",
        "did you mean 'max_ttl'?",
    )
    assert syntax.line == 3
    assert "invalid TOML" in syntax.message


def test_load_config_refuses_missing_files_and_unknown_extensions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"unknown config file type '\.ini'"):
        load_config(write(tmp_path, "edge.ini", MINIMAL))


# --- values ---


def test_no_cache_key_means_cloudfront_legacy_ttls(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "edge.yaml", MINIMAL))

    policy = config.default_behavior.cache
    assert (policy.min_ttl, policy.default_ttl, policy.max_ttl) == LEGACY_TTLS
    assert policy.name is None


@pytest.mark.parametrize(
    ("cache", "ttls"),
    [
        ("{min_ttl: 100000}", (100_000, 100_000, 31_536_000)),
        ("{min_ttl: 40000000}", (40_000_000, 40_000_000, 40_000_000)),
        ("{default_ttl: 40000000}", (0, 40_000_000, 40_000_000)),
        ("{default_ttl: 5}", (0, 5, 31_536_000)),
        ("{max_ttl: 60}", (0, 60, 60)),
        ("{min_ttl: 10, max_ttl: 60}", (10, 60, 60)),
        ("{min_ttl: 1, default_ttl: 2, max_ttl: 3}", (1, 2, 3)),
    ],
)
def test_missing_ttls_follow_cloudfront_legacy_values(cache: str, ttls: tuple[int, ...]) -> None:
    config = parse_config(MINIMAL + f"  cache: {cache}\n")

    policy = config.default_behavior.cache
    assert (policy.min_ttl, policy.default_ttl, policy.max_ttl) == ttls


@pytest.mark.parametrize("name", sorted(MANAGED_CACHE_POLICIES))
def test_managed_cache_policies_by_name(name: str) -> None:
    config = parse_config(MINIMAL + f"  cache: {name}\n")

    assert config.default_behavior.cache == MANAGED_CACHE_POLICIES[name]
    assert config.default_behavior.cache.name == name


def test_caching_disabled_is_all_zero_ttls() -> None:
    policy = parse_config(MINIMAL + "  cache: CachingDisabled\n").default_behavior.cache

    assert (policy.min_ttl, policy.default_ttl, policy.max_ttl) == (0, 0, 0)


def test_selections_keep_query_and_cookie_case_and_lowercase_headers() -> None:
    config = parse_config(
        MINIMAL
        + textwrap.indent(
            textwrap.dedent(
                """\
                cache:
                  query_strings: {except: [Utm_Source]}
                  headers: [X-Device, Accept-Language]
                  cookies: [SessionId]
                origin_request:
                  headers: {except: [X-Debug]}
                  cookies: all
                  query_strings: []
                """
            ),
            "  ",
        )
    )

    behavior = config.default_behavior
    assert behavior.cache.query_strings == Selection("except", frozenset({"Utm_Source"}))
    assert behavior.cache.headers == Selection("allow", frozenset({"x-device", "accept-language"}))
    assert behavior.cache.cookies == Selection("allow", frozenset({"SessionId"}))
    assert behavior.origin_request.headers == Selection("except", frozenset({"x-debug"}))
    assert behavior.origin_request.cookies == Selection("all")
    assert behavior.origin_request.query_strings == Selection("none")


def test_method_lists_are_case_insensitive_and_order_free() -> None:
    config = parse_config(
        MINIMAL
        + "  allowed_methods: [options, head, get]\n  cached_methods: [HEAD, OPTIONS, GET]\n"
    )

    assert config.default_behavior.allowed_methods == {"GET", "HEAD", "OPTIONS"}
    assert config.default_behavior.cached_methods == {"GET", "HEAD", "OPTIONS"}


def test_origin_urls_keep_path_prefix_and_default_ports() -> None:
    config = parse_config(
        """\
origins:
  v1: {url: "https://api.example.com/v1/"}
  six: {url: "http://[::1]:9000"}
  plain: {url: "http://localhost"}
default_behavior: {origin: v1}
"""
    )

    assert config.origins["v1"] == CustomOrigin("v1", "https", "api.example.com", 443, "/v1")
    assert config.origins["six"] == CustomOrigin("six", "http", "::1", 9000)
    assert config.origins["plain"] == CustomOrigin("plain", "http", "localhost", 80)


def test_directory_is_relative_to_the_config_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf" / "www").mkdir(parents=True)
    text = "origins:\n  s: {directory: www}\ndefault_behavior: {origin: s}\n"
    path = write(tmp_path / "conf", "edge.yaml", text)
    monkeypatch.chdir(tmp_path)

    config = load_config(Path("conf") / "edge.yaml")

    assert config.origins["s"] == DirectoryOrigin("s", path.parent / "www")
    assert config.source == Path("conf") / "edge.yaml"


def test_listen_may_be_a_bare_port() -> None:
    assert parse_config("listen: 9000\n" + MINIMAL).listen == Listen("127.0.0.1", 9000)


def test_admin_listen_null_or_false_disables_the_admin_api() -> None:
    for value in ("null", "false", "~"):
        assert parse_config(f"admin_listen: {value}\n" + MINIMAL).admin_listen is None
    assert parse_config(MINIMAL).admin_listen == Listen("127.0.0.1", 8081)


def test_function_associations_in_event_order() -> None:
    # Association errors are tested with real packages in test_config_functions.py.
    config = parse_config(
        """\
functions:
  auth: {runtime: python3.12, handler: basic_auth.handler}
  headers: {runtime: python3.12, handler: security_headers.handler}
origins:
  app: {url: "http://127.0.0.1:3000"}
default_behavior:
  origin: app
  functions:
    viewer-response: headers
    viewer-request: {function: auth, include_body: true}
""",
        base_dir=REPO / "functions",
    )

    assert config.default_behavior.functions == (
        ("viewer-request", FunctionAssociation("auth", include_body=True)),
        ("viewer-response", FunctionAssociation("headers")),
    )


def test_yaml_merge_keys_share_settings() -> None:
    config = parse_config(
        """\
origins:
  app: {url: "http://127.0.0.1:3000"}
behaviors:
  - path: /a/*
    origin: app
    cache: &short {min_ttl: 5, default_ttl: 50, max_ttl: 500}
  - path: /b/*
    origin: app
    cache:
      <<: *short
      max_ttl: 60
default_behavior: {origin: app}
"""
    )

    first, second = config.behaviors
    assert (first.cache.min_ttl, first.cache.default_ttl, first.cache.max_ttl) == (5, 50, 500)
    assert (second.cache.min_ttl, second.cache.default_ttl, second.cache.max_ttl) == (5, 50, 60)


# --- quick mode ---


def test_quick_config_fronts_one_origin_with_legacy_cache_settings() -> None:
    config = quick_config("http://127.0.0.1:3000/app/", listen=Listen("127.0.0.1", 0))

    assert config.origins == {"origin": CustomOrigin("origin", "http", "127.0.0.1", 3000, "/app")}
    behavior = config.default_behavior
    assert (behavior.path_pattern, behavior.origin) == ("*", "origin")
    assert (behavior.cache.min_ttl, behavior.cache.default_ttl, behavior.cache.max_ttl) == (
        LEGACY_TTLS
    )
    assert behavior.allowed_methods == ALL_METHODS
    assert behavior.cache.query_strings == Selection("all")
    assert config.behaviors == ()
    assert config.listen == Listen("127.0.0.1", 0)


def test_quick_config_rejects_a_bad_url() -> None:
    with pytest.raises(ConfigError) as caught:
        quick_config("localhost:3000")

    assert str(caught.value).startswith("--origin: an origin URL starts with http://")


# --- sizes and listen addresses ---


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MiB", 512 * 2**20),
        ("1GB", 10**9),
        ("64 KiB", 64 * 1024),
        ("1000", 1000),
        (1024, 1024),
        ("1.5GiB", 3 * 2**29),
        ("10kb", 10_000),
        ("0", 0),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "-1", "1 parsec", "1e6", "12 MiB MiB", -5, True])
def test_parse_size_refuses_bad_values(text: str | int) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "listen"),
    [
        ("127.0.0.1:8080", Listen("127.0.0.1", 8080)),
        ("[::1]:8080", Listen("::1", 8080)),
        ("localhost:0", Listen("localhost", 0)),
        (":8080", Listen("127.0.0.1", 8080)),
        ("0.0.0.0:65535", Listen("0.0.0.0", 65_535)),
    ],
)
def test_parse_listen(text: str, listen: Listen) -> None:
    assert parse_listen(text) == listen
    assert str(parse_listen(str(listen))) == str(listen)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("8080", "expected host:port"),
        ("127.0.0.1:65536", "from 0 to 65535"),
        ("127.0.0.1:http", "from 0 to 65535"),
        ("127.0.0.1:", "from 0 to 65535"),
        ("::1:8080", "IPv6 address in brackets"),
        ("[::1]8080", "[IPv6 address]:port"),
        ("[nope]:80", "not an IPv6 address"),
        ("bad host:80", "not a host name"),
    ],
)
def test_parse_listen_refuses_bad_values(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_listen(text)

    assert fragment in str(caught.value)
