"""Origin groups and custom error responses in the config: values, and errors naming file:line: key.

The rules are CloudFront's (high_availability_origin_failover.md,
GeneratingCustomErrorResponses.md, the API's OriginGroup and
CustomErrorResponse); every config is a real file loaded with load_config.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from edgesim.config import Config, CustomErrorResponse, OriginGroup, load_config, parse_config
from edgesim.config.failover import CUSTOM_ERROR_CODES, CUSTOM_RESPONSE_CODES, FAILOVER_STATUSES
from edgesim.config.schema import ALL_METHODS, Behavior, CustomOrigin, DirectoryOrigin
from edgesim.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

EXAMPLE = """\
cache:
  error_caching_min_ttl: 3           # the default for custom errors without their own
origins:
  app: {url: http://127.0.0.1:3000}
  backup: {url: http://127.0.0.1:3001}
  errors: {url: http://127.0.0.1:3002}
origin_groups:
  ha:
    primary: app
    secondary: backup
    failover_statuses: [500, 502, 503, 504]
  static:
    primary: backup
    secondary: app
    failover_statuses: [403, 404]
behaviors:
  - path: /errors/*
    origin: errors
  - path: /api/*
    origin: ha
    allowed_methods: [GET, HEAD, OPTIONS]
    cached_methods: [GET, HEAD, OPTIONS]
  - path: /write/*
    origin: app
    allowed_methods: all
default_behavior:
  origin: static
custom_error_responses:
  - error_code: 404
    response_page_path: /errors/404.html
    response_code: 200
    error_caching_min_ttl: 60
  - error_code: 503
    error_caching_min_ttl: 0
  - error_code: 500
"""

EXAMPLE_DATA = {
    "cache": {"error_caching_min_ttl": 3},
    "origins": {
        "app": {"url": "http://127.0.0.1:3000"},
        "backup": {"url": "http://127.0.0.1:3001"},
        "errors": {"url": "http://127.0.0.1:3002"},
    },
    "origin_groups": {
        "ha": {"primary": "app", "secondary": "backup", "failover_statuses": [500, 502, 503, 504]},
        "static": {"primary": "backup", "secondary": "app", "failover_statuses": [403, 404]},
    },
    "behaviors": [
        {"path": "/errors/*", "origin": "errors"},
        {
            "path": "/api/*",
            "origin": "ha",
            "allowed_methods": ["GET", "HEAD", "OPTIONS"],
            "cached_methods": ["GET", "HEAD", "OPTIONS"],
        },
        {"path": "/write/*", "origin": "app", "allowed_methods": "all"},
    ],
    "default_behavior": {"origin": "static"},
    "custom_error_responses": [
        {
            "error_code": 404,
            "response_page_path": "/errors/404.html",
            "response_code": 200,
            "error_caching_min_ttl": 60,
        },
        {"error_code": 503, "error_caching_min_ttl": 0},
        {"error_code": 500},
    ],
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(folder: Path, text: str, name: str = "edge.yaml") -> tuple[ConfigError, Path]:
    path = write(folder, name, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value, path


def assert_error(error: ConfigError, file: Path, line: int, key: str, fragment: str) -> None:
    """The message starts with file:line: key: and says ``fragment``."""
    assert (error.file, error.line, error.path) == (str(file), line, key), str(error)
    assert str(error).startswith(f"{file}:{line}: {key}: "), str(error)
    assert fragment in error.message, str(error)


# --- what loads ---


def test_example_loads_with_every_value(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "edge.yaml", EXAMPLE))

    assert config.origin_groups == {
        "ha": OriginGroup("ha", "app", "backup", frozenset({500, 502, 503, 504})),
        "static": OriginGroup("static", "backup", "app", frozenset({403, 404})),
    }
    errors, api, writes = config.behaviors
    assert (errors.origin, api.origin, writes.origin) == ("errors", "ha", "app")
    assert api.allowed_methods == {"GET", "HEAD", "OPTIONS"}
    assert writes.allowed_methods == ALL_METHODS
    assert config.default_behavior.origin == "static"
    assert config.custom_error_responses == {
        404: CustomErrorResponse(404, "/errors/404.html", 200, 60),
        503: CustomErrorResponse(503, None, None, 0),
        500: CustomErrorResponse(500, None, None, 3),
    }
    assert list(config.custom_error_responses) == [404, 503, 500]


def test_example_in_json_and_toml_gives_the_same_config(tmp_path: Path) -> None:
    toml = """\
    [cache]
    error_caching_min_ttl = 3

    [origins]
    app = { url = "http://127.0.0.1:3000" }
    backup = { url = "http://127.0.0.1:3001" }
    errors = { url = "http://127.0.0.1:3002" }

    [origin_groups.ha]
    primary = "app"
    secondary = "backup"
    failover_statuses = [500, 502, 503, 504]

    [origin_groups.static]
    primary = "backup"
    secondary = "app"
    failover_statuses = [403, 404]

    [[behaviors]]
    path = "/errors/*"
    origin = "errors"

    [[behaviors]]
    path = "/api/*"
    origin = "ha"
    allowed_methods = ["GET", "HEAD", "OPTIONS"]
    cached_methods = ["GET", "HEAD", "OPTIONS"]

    [[behaviors]]
    path = "/write/*"
    origin = "app"
    allowed_methods = "all"

    [default_behavior]
    origin = "static"

    [[custom_error_responses]]
    error_code = 404
    response_page_path = "/errors/404.html"
    response_code = 200
    error_caching_min_ttl = 60

    [[custom_error_responses]]
    error_code = 503
    error_caching_min_ttl = 0

    [[custom_error_responses]]
    error_code = 500
    """
    from_yaml = load_config(write(tmp_path, "edge.yaml", EXAMPLE))
    from_json = load_config(write(tmp_path, "edge.json", json.dumps(EXAMPLE_DATA, indent=2)))
    from_toml = load_config(write(tmp_path, "edge.toml", toml))

    def without_source(config: Config) -> Config:
        return dataclasses.replace(config, source=None)

    assert without_source(from_json) == without_source(from_yaml)
    assert without_source(from_toml) == without_source(from_yaml)


def test_origin_chain_is_the_origins_to_try_in_order(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "edge.yaml", EXAMPLE))
    app, backup, errors = (config.origins[name] for name in ("app", "backup", "errors"))

    assert config.origin_chain("app") == (app,)
    assert config.origin_chain("errors") == (errors,)
    assert config.origin_chain("ha") == (app, backup)
    assert config.origin_chain("static") == (backup, app)
    assert [config.origin_chain(b.origin) for b in config.all_behaviors] == [
        (errors,),
        (app, backup),
        (app,),
        (backup, app),
    ]
    with pytest.raises(KeyError):
        config.origin_chain("nowhere")


def test_origin_chain_on_a_config_built_in_code() -> None:
    app = CustomOrigin("app", "http", "127.0.0.1", 3000)
    site = DirectoryOrigin("site", Path("/srv/site"))
    config = Config(
        origins={"app": app, "site": site},
        default_behavior=Behavior("*", "ha"),
        origin_groups={"ha": OriginGroup("ha", "app", "site", frozenset({503}))},
    )

    assert config.origin_chain(config.default_behavior.origin) == (app, site)
    assert config.origin_chain("site") == (site,)


def test_without_the_sections_there_are_no_groups_or_custom_errors() -> None:
    minimal = parse_config(
        "origins: {app: {url: 'http://127.0.0.1:3000'}}\ndefault_behavior: {origin: app}\n"
    )
    empty = parse_config(
        "origins: {app: {url: 'http://127.0.0.1:3000'}}\n"
        "default_behavior: {origin: app}\n"
        "origin_groups:\n"
        "custom_error_responses:\n"
    )

    for config in (minimal, empty):
        assert config.origin_groups == {}
        assert config.custom_error_responses == {}
        assert config.origin_chain("app") == (config.origins["app"],)


def test_a_custom_error_without_a_ttl_takes_cloudfronts_10_seconds() -> None:
    config = parse_config(
        textwrap.dedent(
            """\
            origins: {app: {url: 'http://127.0.0.1:3000'}}
            default_behavior: {origin: app}
            custom_error_responses:
              - {error_code: 404, response_page_path: /404.html, response_code: 404}
            """
        )
    )

    assert config.custom_error_responses[404] == CustomErrorResponse(404, "/404.html", 404, 10)
    assert CustomErrorResponse(404).error_caching_min_ttl == 10


@pytest.mark.parametrize("status", sorted(FAILOVER_STATUSES))
def test_every_failover_status_cloudfront_allows_loads(status: int) -> None:
    config = parse_config(
        "origins: {a: {url: 'http://127.0.0.1:1'}, b: {url: 'http://127.0.0.1:2'}}\n"
        f"origin_groups: {{g: {{primary: a, secondary: b, failover_statuses: [{status}]}}}}\n"
        "default_behavior: {origin: g}\n"
    )

    assert config.origin_groups["g"].failover_statuses == {status}


@pytest.mark.parametrize("code", sorted(CUSTOM_ERROR_CODES))
def test_every_error_code_cloudfront_allows_loads(code: int) -> None:
    config = parse_config(
        "origins: {a: {url: 'http://127.0.0.1:1'}}\n"
        "default_behavior: {origin: a}\n"
        f"custom_error_responses: [{{error_code: {code}}}]\n"
    )

    assert config.custom_error_responses == {code: CustomErrorResponse(code)}


@pytest.mark.parametrize("status", sorted(CUSTOM_RESPONSE_CODES))
def test_every_response_code_cloudfront_allows_loads(status: int) -> None:
    config = parse_config(
        "origins: {a: {url: 'http://127.0.0.1:1'}}\n"
        "default_behavior: {origin: a}\n"
        "custom_error_responses:\n"
        f"  - {{error_code: 502, response_page_path: /e.html, response_code: {status}}}\n"
    )

    assert config.custom_error_responses[502] == CustomErrorResponse(502, "/e.html", status)


def test_cloudfronts_status_lists() -> None:
    # high_availability_origin_failover.md; GeneratingCustomErrorResponses.md.
    assert sorted(FAILOVER_STATUSES) == [400, 403, 404, 416, 500, 502, 503, 504]
    assert sorted(CUSTOM_ERROR_CODES) == [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504]
    assert sorted(CUSTOM_RESPONSE_CODES) == [200, *sorted(CUSTOM_ERROR_CODES)]


def test_the_shipped_examples_load_when_uncommented(tmp_path: Path) -> None:
    """configs/example.yaml shows both sections commented out; uncommented, they load."""
    lines = (REPO / "configs" / "example.yaml").read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    block = False
    for line in lines:
        if line in ("# origin_groups:", "# custom_error_responses:"):
            block = True
        elif block and not line.startswith("#   "):
            block = False
        out.append(line[2:] if block else line)
    text = "\n".join(out)
    assert text.count("\n  origin: site\n  cache:") == 1  # default_behavior's
    text = text.replace("\n  origin: site\n  cache:", "\n  origin: ha\n  cache:")
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "public").mkdir()

    config = load_config(path)

    assert config.origin_groups == {
        "ha": OriginGroup("ha", "app", "site", frozenset({500, 502, 503, 504}))
    }
    assert config.default_behavior.origin == "ha"
    assert config.origin_chain("ha") == (config.origins["app"], config.origins["site"])
    assert config.custom_error_responses == {
        403: CustomErrorResponse(403, "/index.html", 200, 10),
        503: CustomErrorResponse(503, None, None, 0),
    }
    # As shipped, the example has neither.
    shipped = load_config(REPO / "configs" / "example.yaml")
    assert (shipped.origin_groups, shipped.custom_error_responses) == ({}, {})


# --- errors: file, line, key path ---

GROUP_ERRORS = [
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_group:
          ha: {primary: app, secondary: backup, failover_statuses: [500]}
        """,
        5,
        "origin_group",
        "unknown key; did you mean 'origin_groups'?",
        id="misspelt-section",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          - {primary: app, secondary: backup, failover_statuses: [500]}
        """,
        5,
        "origin_groups",
        "expected a mapping, not a list",
        id="section-not-a-mapping",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          app:
            primary: app
            secondary: backup
            failover_statuses: [500]
        """,
        6,
        "origin_groups.app",
        "'app' is already an origin's name",
        id="name-clashes-with-an-origin",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: app
            secondary: backup
            failover_status: [500]
        """,
        9,
        "origin_groups.ha.failover_status",
        "unknown key for an origin group; did you mean 'failover_statuses'?",
        id="misspelt-key",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            secondary: backup
            failover_statuses: [500]
        """,
        6,
        "origin_groups.ha.primary",
        "missing required key",
        id="missing-primary",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: app
            secondary: backup
        """,
        6,
        "origin_groups.ha.failover_statuses",
        "missing required key",
        id="missing-failover-statuses",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: ap
            secondary: backup
            failover_statuses: [500]
        """,
        7,
        "origin_groups.ha.primary",
        "no origin named 'ap'; did you mean 'app'?",
        id="unknown-primary",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha: {primary: app, secondary: backup, failover_statuses: [500]}
          hb:
            primary: backup
            secondary: ha
            failover_statuses: [500]
        """,
        9,
        "origin_groups.hb.secondary",
        "'ha' is an origin group; a group's members must be origins",
        id="member-is-a-group",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: app
            secondary: app
            failover_statuses: [500]
        """,
        8,
        "origin_groups.ha.secondary",
        "the secondary must be a different origin from the primary ('app')",
        id="same-origin-twice",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: app
            secondary: backup
            failover_statuses: []
        """,
        9,
        "origin_groups.ha.failover_statuses",
        "list at least one status to fail over on: 400, 403, 404, 416, 500, 502, 503, 504",
        id="no-failover-statuses",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: app
            secondary: backup
            failover_statuses: 500
        """,
        9,
        "origin_groups.ha.failover_statuses",
        "expected a list, not a number",
        id="failover-statuses-not-a-list",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: app
            secondary: backup
            failover_statuses:
              - 500
              - 501
        """,
        11,
        "origin_groups.ha.failover_statuses[1]",
        "CloudFront can't fail over on 501; failover statuses are 400, 403, 404, 416, 500",
        id="status-cloudfront-refuses",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: app
            secondary: backup
            failover_statuses:
              - 503
              - 503
        """,
        11,
        "origin_groups.ha.failover_statuses[1]",
        "503 is listed twice",
        id="status-twice",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
          ha:
            primary: app
            secondary: backup
            failover_statuses:
              - "500"
        """,
        10,
        "origin_groups.ha.failover_statuses[0]",
        "expected a whole number, not a string",
        id="status-as-string",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        default_behavior: {origin: app}
        origin_groups:
        """.rstrip(" ")
        + "".join(
            f"          g{i}: {{primary: app, secondary: backup, failover_statuses: [500]}}\n"
            for i in range(11)
        ),
        5,
        "origin_groups",
        "at most 10 origin groups per distribution (CloudFront quota)",
        id="quota",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        origin_groups:
          ha: {primary: app, secondary: backup, failover_statuses: [500]}
        behaviors:
          - path: /api/*
            origin: h_a
        default_behavior: {origin: app}
        """,
        8,
        "behaviors[0].origin",
        "no origin or origin group named 'h_a'; did you mean 'ha'?",
        id="behavior-names-unknown-group",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        origin_groups:
          ha: {primary: app, secondary: backup, failover_statuses: [500]}
        behaviors:
          - path: /api/*
            allowed_methods: all
            origin: ha
        default_behavior: {origin: app}
        """,
        8,
        "behaviors[0].allowed_methods",
        "the origin is the origin group 'ha', and CloudFront allows only [GET, HEAD] or "
        "[GET, HEAD, OPTIONS] with an origin group",
        id="group-behavior-allows-all-methods",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
          backup: {url: http://127.0.0.1:3001}
        origin_groups:
          ha: {primary: app, secondary: backup, failover_statuses: [500]}
        default_behavior:
          origin: ha
          allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]
        """,
        8,
        "default_behavior.allowed_methods",
        "CloudFront allows only [GET, HEAD] or [GET, HEAD, OPTIONS] with an origin group",
        id="group-default-behavior-allows-all-methods",
    ),
]

CUSTOM_ERROR_ERRORS = [
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          error_code: 404
        """,
        4,
        "custom_error_responses",
        "expected a list, not a mapping",
        id="section-not-a-list",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - 404
        """,
        5,
        "custom_error_responses[0]",
        "expected a mapping, not a number",
        id="item-not-a-mapping",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 404
            response_page: /404.html
        """,
        6,
        "custom_error_responses[0].response_page",
        "unknown key for a custom error response; did you mean 'response_page_path'?",
        id="misspelt-key",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 404
          - error_caching_min_ttl: 5
        """,
        6,
        "custom_error_responses[1].error_code",
        "missing required key",
        id="missing-error-code",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 418
        """,
        5,
        "custom_error_responses[0].error_code",
        "CloudFront can't customize the response to 418; error_code must be one of 400, 403,",
        id="error-code-cloudfront-refuses",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 200
        """,
        5,
        "custom_error_responses[0].error_code",
        "CloudFront can't customize the response to 200",
        id="error-code-200",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: true
        """,
        5,
        "custom_error_responses[0].error_code",
        "expected a whole number, not a boolean",
        id="error-code-boolean",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 404
            error_caching_min_ttl: 5
          - error_caching_min_ttl: 60
            error_code: 404
        """,
        8,
        "custom_error_responses[1].error_code",
        "error_code 404 is given twice (also at custom_error_responses[0])",
        id="error-code-twice",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 404
            response_page_path: errors/404.html
            response_code: 404
        """,
        6,
        "custom_error_responses[0].response_page_path",
        "a response page path starts with '/'",
        id="page-path-without-slash",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 404
            response_page_path: /errors/not found.html
            response_code: 404
        """,
        6,
        "custom_error_responses[0].response_page_path",
        "can't hold spaces or control characters",
        id="page-path-with-space",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 404
            response_page_path: /errors/404.html
        """,
        6,
        "custom_error_responses[0].response_page_path",
        "response_page_path needs response_code too",
        id="page-path-without-response-code",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 404
            response_code: 200
        """,
        6,
        "custom_error_responses[0].response_code",
        "response_code needs response_page_path too",
        id="response-code-without-page-path",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 404
            response_page_path: /errors/404.html
            response_code: 302
        """,
        7,
        "custom_error_responses[0].response_code",
        "CloudFront can't answer with 302; response_code must be one of 200, 400,",
        id="response-code-cloudfront-refuses",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 503
            error_caching_min_ttl: -1
        """,
        6,
        "custom_error_responses[0].error_caching_min_ttl",
        "must be at least 0",
        id="negative-ttl",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        default_behavior: {origin: app}
        custom_error_responses:
          - error_code: 503
            error_caching_min_ttl: 1.5
        """,
        6,
        "custom_error_responses[0].error_caching_min_ttl",
        "expected a whole number, not a number",
        id="fractional-ttl",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), GROUP_ERRORS + CUSTOM_ERROR_ERRORS)
def test_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, fragment: str
) -> None:
    error, path = load_error(tmp_path, text)

    assert_error(error, path, line, key, fragment)


def test_json_errors_have_lines(tmp_path: Path) -> None:
    status, path = load_error(
        tmp_path,
        "{\n"
        '  "origins": {\n'
        '    "app": {"url": "http://127.0.0.1:3000"},\n'
        '    "backup": {"url": "http://127.0.0.1:3001"}\n'
        "  },\n"
        '  "origin_groups": {\n'
        '    "ha": {\n'
        '      "primary": "app",\n'
        '      "secondary": "backup",\n'
        '      "failover_statuses": [\n'
        "        500,\n"
        "        418\n"
        "      ]\n"
        "    }\n"
        "  },\n"
        '  "default_behavior": {"origin": "ha"}\n'
        "}\n",
        name="edge.json",
    )
    both, path = load_error(
        tmp_path,
        "{\n"
        '  "origins": {"app": {"url": "http://127.0.0.1:3000"}},\n'
        '  "default_behavior": {"origin": "app"},\n'
        '  "custom_error_responses": [\n'
        '    {"error_code": 404},\n'
        "    {\n"
        '      "error_code": 403,\n'
        '      "response_code": 200\n'
        "    }\n"
        "  ]\n"
        "}\n",
        name="edge.json",
    )

    assert_error(
        status,
        path,
        12,
        "origin_groups.ha.failover_statuses[1]",
        "CloudFront can't fail over on 418",
    )
    assert_error(
        both,
        path,
        8,
        "custom_error_responses[1].response_code",
        "response_code needs response_page_path too",
    )


def test_toml_errors_have_lines(tmp_path: Path) -> None:
    error, path = load_error(
        tmp_path,
        """\
        [origins.app]
        url = "http://127.0.0.1:3000"

        [default_behavior]
        origin = "app"

        [[custom_error_responses]]
        error_code = 404

        [[custom_error_responses]]
        error_code = 500
        error_caching_min_tll = 5
        """,
        name="edge.toml",
    )

    assert_error(
        error,
        path,
        12,
        "custom_error_responses[1].error_caching_min_tll",
        "did you mean 'error_caching_min_ttl'?",
    )
