"""Edge functions in the config: Lambda@Edge's rules, each error naming file, line and key.

Every config here is a real file in tmp_path/configs with its packages in
real folders beside it (tmp_path/functions), as a user would lay them out.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from edgesim.config import config_warnings, load_config
from edgesim.config.functions import ACCEPTED_RUNTIMES, package_size
from edgesim.config.schema import Behavior, Config, FunctionAssociation, FunctionConfig
from edgesim.errors import ConfigError

HANDLER = """\
def handler(event, context):
    return event["Records"][0]["cf"]["request"]
"""

MB = 1024 * 1024
RESTRICTIONS = "lambda-at-edge-function-restrictions.html"


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """tmp_path/configs for config files, tmp_path/functions holding auth.py and headers.py."""
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "auth.py").write_text(HANDLER)
    (functions / "headers.py").write_text(HANDLER)
    folder = tmp_path / "configs"
    folder.mkdir()
    return folder


def write(folder: Path, text: str, name: str = "edge.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(folder: Path, text: str) -> tuple[ConfigError, Path]:
    path = write(folder, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value, path


def assert_error(error: ConfigError, file: Path, line: int, key: str, fragment: str) -> None:
    """The message starts with file:line: key: and says ``fragment``."""
    assert (error.file, error.line, error.path) == (str(file), line, key), str(error)
    assert str(error).startswith(f"{file}:{line}: {key}: "), str(error)
    assert fragment in error.message, str(error)


def random_file(path: Path, size: int) -> None:
    """A file that deflate can't shrink, so its compressed size is about ``size``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))


# --- what loads ---


def test_every_setting_is_read(configs: Path) -> None:
    path = write(
        configs,
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            memory: 128
            timeout: 5
            concurrency: 100
            prewarm: 2
            idle_timeout: 60
            architectures: [x86_64]
            ephemeral_storage: 512
          rewrite:
            runtime: python3.13
            code: ../functions
            handler: headers.handler
            memory: 10240
            timeout: 30
        default_behavior:
          origin: app
          functions:
            viewer-request: auth
            origin-request: {function: rewrite, include_body: true}
        """,
    )

    config = load_config(path)

    functions = (configs.parent / "functions").resolve()
    assert config.functions == {
        "auth": FunctionConfig("auth", "python3.12", functions, "auth.handler", 128, 5, 100, 2, 60),
        "rewrite": FunctionConfig(
            "rewrite", "python3.13", functions, "headers.handler", 10_240, 30
        ),
    }
    assert config.default_behavior.functions == (
        ("viewer-request", FunctionAssociation("auth")),
        ("origin-request", FunctionAssociation("rewrite", include_body=True)),
    )


def test_defaults_are_lambdas_and_the_package_is_the_config_folder(configs: Path) -> None:
    (configs / "lambda_function.py").write_text(HANDLER)
    path = write(
        configs,
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: python3.11, handler: lambda_function.handler}
        default_behavior: {origin: app}
        """,
    )

    (function,) = load_config(path).functions.values()

    assert function == FunctionConfig(
        "auth", "python3.11", configs.resolve(), "lambda_function.handler"
    )
    assert (function.memory, function.timeout, function.concurrency) == (128, 3.0, 1000)
    assert (function.prewarm, function.idle_timeout) == (0, 300.0)


@pytest.mark.parametrize("runtime", ACCEPTED_RUNTIMES)
def test_accepted_runtimes(configs: Path, runtime: str) -> None:
    path = write(
        configs,
        f"""\
        origins:
          app: {{url: http://127.0.0.1:3000}}
        functions:
          auth: {{runtime: {runtime}, code: ../functions, handler: auth.handler}}
        default_behavior: {{origin: app}}
        """,
    )

    assert load_config(path).functions["auth"].runtime == runtime


@pytest.mark.parametrize(
    ("layout", "handler"),
    [
        ({"pkg/__init__.py": HANDLER}, "pkg.handler"),
        ({"pkg/__init__.py": "", "pkg/edge.py": HANDLER}, "pkg.edge.handler"),
        ({"src/app.py": HANDLER}, "src/app.handler"),
    ],
    ids=["package", "module-in-package", "slash-path"],
)
def test_handlers_in_packages_and_subfolders(
    configs: Path, layout: dict[str, str], handler: str
) -> None:
    for name, text in layout.items():
        (configs / name).parent.mkdir(parents=True, exist_ok=True)
        (configs / name).write_text(text)
    path = write(
        configs,
        f"""\
        origins:
          app: {{url: http://127.0.0.1:3000}}
        functions:
          auth: {{runtime: python3.12, handler: {handler}}}
        default_behavior: {{origin: app}}
        """,
    )

    assert load_config(path).functions["auth"].handler == handler


def test_json_config_with_functions(configs: Path) -> None:
    document = {
        "origins": {"app": {"url": "http://127.0.0.1:3000"}},
        "functions": {
            "auth": {"runtime": "python3.12", "code": "../functions", "handler": "auth.handler"}
        },
        "default_behavior": {"origin": "app", "functions": {"viewer-request": "auth"}},
    }
    path = write(configs, json.dumps(document, indent=2), name="edge.json")

    assert load_config(path).functions["auth"].handler == "auth.handler"


def test_no_functions_section_or_null_means_none(configs: Path) -> None:
    text = "origins:\n  app: {url: http://127.0.0.1:3000}\ndefault_behavior: {origin: app}\n"
    assert load_config(write(configs, text)).functions == {}
    assert load_config(write(configs, "functions: null\n" + text)).functions == {}


# --- errors in a function's definition ---

DEFINITION_ERRORS = [
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            code: ../functions
            handler: auth.handler
        default_behavior: {origin: app}
        """,
        4,
        "functions.auth.runtime",
        "missing required key",
        id="runtime-missing",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.9
            code: ../functions
            handler: auth.handler
        default_behavior: {origin: app}
        """,
        5,
        "functions.auth.runtime",
        "edgesim does not run python3.9; use one of: python3.11, python3.12, python3.13,",
        id="runtime-older-python",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            code: ../functions
            runtime: nodejs20.x
            handler: auth.handler
        default_behavior: {origin: app}
        """,
        7,
        "functions.auth.handler",
        "no module 'auth' in",
        id="runtime-nodejs-handler-missing",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: cloudfront-js-2.0, code: ../functions, handler: auth.handler}
        default_behavior: {origin: app}
        """,
        4,
        "functions.auth.handler",
        "a CloudFront Function has no handler: AWS fixes it",
        id="runtime-cloudfront-js-handler",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python
            code: ../functions
            handler: auth.handler
        default_behavior: {origin: app}
        """,
        5,
        "functions.auth.runtime",
        "unknown runtime 'python'; use one of: python3.11, python3.12, python3.13, nodejs18.x",
        id="runtime-unknown",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: 3.12
            code: ../functions
            handler: auth.handler
        default_behavior: {origin: app}
        """,
        5,
        "functions.auth.runtime",
        "expected a string, not a number",
        id="runtime-not-a-string",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../lambdas
            handler: auth.handler
        default_behavior: {origin: app}
        """,
        6,
        "functions.auth.code",
        "lambdas' does not exist",
        id="code-missing",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions/auth.py
            handler: auth.handler
        default_behavior: {origin: app}
        """,
        6,
        "functions.auth.code",
        "is not a folder",
        id="code-a-file",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
        default_behavior: {origin: app}
        """,
        4,
        "functions.auth.handler",
        "missing required key",
        id="handler-missing",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth
        default_behavior: {origin: app}
        """,
        7,
        "functions.auth.handler",
        "a handler is module.function, like basic_auth.handler, not 'auth'",
        id="handler-no-function",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: basic-auth.handler
        default_behavior: {origin: app}
        """,
        7,
        "functions.auth.handler",
        "a handler is module.function",
        id="handler-not-an-identifier",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: basic_auth.handler
        default_behavior: {origin: app}
        """,
        7,
        "functions.auth.handler",
        "no module 'basic_auth' in",
        id="handler-module-missing",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            memory: 64
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.memory",
        "64 is out of range: must be 128 to 10240",
        id="memory-too-small",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            memory: 10241
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.memory",
        "10241 is out of range: must be 128 to 10240",
        id="memory-too-large",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            timeout: 31
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.timeout",
        "a Lambda@Edge function times out after at most 30 s "
        f"(5 s at viewer events; {RESTRICTIONS})",
        id="timeout-over-30",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            timeout: 0
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.timeout",
        "must be more than 0",
        id="timeout-zero",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            concurrency: 0
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.concurrency",
        "0 is out of range: must be at least 1",
        id="concurrency-zero",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            concurrency: 2
            prewarm: 3
        default_behavior: {origin: app}
        """,
        9,
        "functions.auth.prewarm",
        "prewarm (3) is more than concurrency (2)",
        id="prewarm-over-concurrency",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            prewarm: 1001
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.prewarm",
        "prewarm (1001) is more than concurrency (1000)",
        id="prewarm-over-default-concurrency",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            idle_timeout: -1
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.idle_timeout",
        "must be more than 0",
        id="idle-timeout-negative",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            timout: 5
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.timout",
        "unknown key; did you mean 'timeout'?",
        id="misspelt-key",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth.v2:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
        default_behavior: {origin: app}
        """,
        4,
        "functions.auth.v2",
        "a function name is 1 to 64 letters, digits, hyphens or underscores",
        id="function-name",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: auth.handler
        default_behavior: {origin: app}
        """,
        4,
        "functions.auth",
        "expected a mapping, not a string",
        id="definition-not-a-mapping",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          - auth
        default_behavior: {origin: app}
        """,
        3,
        "functions",
        "expected a mapping, not a list",
        id="functions-a-list",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            architectures: [arm64]
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.architectures[0]",
        f"Lambda@Edge does not support arm64 ({RESTRICTIONS})",
        id="architecture-arm64",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            architectures: [x86_64, arm64]
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.architectures",
        "a function has exactly one architecture",
        id="architectures-two",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            architectures: x86
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.architectures",
        "unknown architecture 'x86'; Lambda@Edge runs x86_64",
        id="architecture-unknown",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            ephemeral_storage: 1024
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.ephemeral_storage",
        f"Lambda@Edge does not support ephemeral storage over 512 MB ({RESTRICTIONS})",
        id="ephemeral-storage-over-512",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            ephemeral_storage: 256
        default_behavior: {origin: app}
        """,
        8,
        "functions.auth.ephemeral_storage",
        "256 is out of range: must be 512 to 10240",
        id="ephemeral-storage-under-512",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), DEFINITION_ERRORS)
def test_definition_errors_name_file_line_and_key(
    configs: Path, text: str, line: int, key: str, fragment: str
) -> None:
    error, path = load_error(configs, text)

    assert_error(error, path, line, key, fragment)


@pytest.mark.parametrize(
    ("key", "value", "feature"),
    [
        ("environment", "{TABLE: users}", "environment variables"),
        ("layers", "[arn:aws:lambda:us-east-1:123456789012:layer:deps:1]", "layers"),
        ("provisioned_concurrency", "5", "provisioned concurrency"),
        ("reserved_concurrency", "5", "reserved concurrency"),
        ("vpc", "{subnet_ids: [subnet-1]}", "VPC access"),
        ("dead_letter_queue", "arn:aws:sqs:us-east-1:123456789012:dlq", "dead-letter queues"),
        ("tracing", "Active", "X-Ray tracing"),
    ],
)
def test_lambda_features_lambda_at_edge_does_not_support(
    configs: Path, key: str, value: str, feature: str
) -> None:
    error, path = load_error(
        configs,
        f"""\
        origins:
          app: {{url: http://127.0.0.1:3000}}
        functions:
          auth:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            {key}: {value}
        default_behavior: {{origin: app}}
        """,
    )

    assert_error(
        error,
        path,
        8,
        f"functions.auth.{key}",
        f"Lambda@Edge does not support {feature} ({RESTRICTIONS})",
    )


def test_at_most_100_functions(configs: Path) -> None:
    lines = [
        f"  f{i}: {{runtime: python3.12, code: ../functions, handler: auth.handler}}"
        for i in range(101)
    ]
    error, path = load_error(
        configs,
        "origins:\n  app: {url: http://127.0.0.1:3000}\nfunctions:\n"
        + "\n".join(lines)
        + "\ndefault_behavior: {origin: app}\n",
    )

    assert_error(error, path, 3, "functions", "at most 100 Lambda@Edge functions per distribution")


# --- errors at an association ---

ASSOCIATION_ERRORS = [
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: python3.12, code: ../functions, handler: auth.handler}
        default_behavior:
          origin: app
          functions:
            viewer-requset: auth
        """,
        8,
        "default_behavior.functions.viewer-requset",
        "unknown key; did you mean 'viewer-request'?",
        id="event-misspelt",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: python3.12, code: ../functions, handler: auth.handler}
        default_behavior:
          origin: app
          functions:
            viewer-request: atuh
        """,
        8,
        "default_behavior.functions.viewer-request",
        "no function named 'atuh'; did you mean 'auth'?",
        id="function-unknown",
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
        id="no-functions",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: python3.12, code: ../functions, handler: auth.handler}
        behaviors:
          - path: /api/*
            origin: app
            functions:
              origin-response: {function: auth, include_body: true}
        default_behavior: {origin: app}
        """,
        9,
        "behaviors[0].functions.origin-response",
        "include_body is only for viewer-request and origin-request",
        id="include-body-origin-response",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: python3.12, code: ../functions, handler: auth.handler}
        default_behavior:
          origin: app
          functions:
            viewer-response: {function: auth, include_body: true}
        """,
        8,
        "default_behavior.functions.viewer-response",
        "include_body is only for viewer-request and origin-request",
        id="include-body-viewer-response",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: python3.12, code: ../functions, handler: auth.handler}
        default_behavior:
          origin: app
          functions:
            viewer-request: {fucntion: auth}
        """,
        8,
        "default_behavior.functions.viewer-request.fucntion",
        "unknown key; did you mean 'function'?",
        id="association-key-misspelt",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: python3.12, code: ../functions, handler: auth.handler}
        default_behavior:
          origin: app
          functions:
            viewer-request: {include_body: true}
        """,
        8,
        "default_behavior.functions.viewer-request.function",
        "missing required key",
        id="association-without-function",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          resize:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            memory: 512
        behaviors:
          - path: /img/*
            origin: app
            functions:
              origin-response: resize
              viewer-response: resize
        default_behavior: {origin: app}
        """,
        14,
        "behaviors[0].functions.viewer-response",
        "function 'resize' can't run at viewer-response: memory 512 MB is over 128 MB "
        f"(Lambda@Edge's limits for viewer events, {RESTRICTIONS})",
        id="viewer-memory",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          slow:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            timeout: 10
        default_behavior:
          origin: app
          functions:
            origin-request: slow
            viewer-request: slow
        """,
        13,
        "default_behavior.functions.viewer-request",
        "function 'slow' can't run at viewer-request: timeout 10 s is over 5 s",
        id="viewer-timeout",
    ),
    pytest.param(
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          slow:
            runtime: python3.12
            code: ../functions
            handler: auth.handler
            timeout: 5.5
            memory: 129
        default_behavior:
          origin: app
          functions:
            viewer-request: slow
        """,
        13,
        "default_behavior.functions.viewer-request",
        "memory 129 MB is over 128 MB; timeout 5.5 s is over 5 s",
        id="viewer-memory-and-timeout",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), ASSOCIATION_ERRORS)
def test_association_errors_name_file_line_and_key(
    configs: Path, text: str, line: int, key: str, fragment: str
) -> None:
    error, path = load_error(configs, text)

    assert_error(error, path, line, key, fragment)


def test_viewer_limits_are_inclusive(configs: Path) -> None:
    path = write(
        configs,
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          auth: {runtime: python3.12, code: ../functions, handler: auth.handler,
                 memory: 128, timeout: 5}
        default_behavior:
          origin: app
          functions: {viewer-request: auth, viewer-response: auth}
        """,
    )

    assert len(load_config(path).default_behavior.functions) == 2


# --- package size ---


def test_a_package_over_1_mb_runs_at_origin_events_only(configs: Path, tmp_path: Path) -> None:
    big = tmp_path / "big"
    (big / "app.py").parent.mkdir()
    (big / "app.py").write_text(HANDLER)
    random_file(big / "model.bin", MB + 64 * 1024)
    origin_only = """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          big: {runtime: python3.12, code: ../big, handler: app.handler}
        default_behavior:
          origin: app
          functions:
            origin-request: big
        """
    assert load_config(write(configs, origin_only)).functions["big"].code == big.resolve()

    error, path = load_error(configs, origin_only + "    viewer-request: big\n")

    assert_error(
        error,
        path,
        9,
        "default_behavior.functions.viewer-request",
        "function 'big' can't run at viewer-request: package 1.06 MB is over 1 MB "
        f"(Lambda@Edge's limits for viewer events, {RESTRICTIONS})",
    )


def test_a_package_over_50_mb_is_refused(configs: Path, tmp_path: Path) -> None:
    huge = tmp_path / "huge"
    huge.mkdir()
    (huge / "app.py").write_text(HANDLER)
    random_file(huge / "weights.bin", 50 * MB + 1024)

    error, path = load_error(
        configs,
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          huge:
            runtime: python3.12
            code: ../huge
            handler: app.handler
        default_behavior: {origin: app}
        """,
    )

    assert_error(
        error,
        path,
        6,
        "functions.huge.code",
        f"is over 50 MB compressed, Lambda@Edge's limit ({RESTRICTIONS})",
    )


def test_package_size_is_deflated_and_skips_bytecode(tmp_path: Path) -> None:
    package = tmp_path / "package"
    (package / "lib").mkdir(parents=True)
    (package / "app.py").write_text(HANDLER)
    (package / "lib" / "zeros.txt").write_bytes(bytes(4 * MB))  # deflates to a few KB
    random_file(package / "__pycache__" / "app.cpython-311.pyc", 2 * MB)
    random_file(package / "lib" / "stale.pyc", 2 * MB)

    size = package_size(package)

    assert 0 < size < 64 * 1024
    random_file(package / "lib" / "data.bin", 100_000)
    assert 100_000 < package_size(package) - size < 101_000


def test_package_size_stops_counting_past_the_limit(tmp_path: Path) -> None:
    for i in range(5):
        random_file(tmp_path / f"part{i}.bin", 100_000)

    assert 200_000 < package_size(tmp_path, limit=150_000) < 250_000
    assert package_size(tmp_path) > 500_000


def test_the_config_folder_as_package_is_measured_without_bytecode(configs: Path) -> None:
    (configs / "app.py").write_text(HANDLER)
    random_file(configs / "__pycache__" / "app.cpython-311.pyc", 2 * MB)
    path = write(
        configs,
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          app: {runtime: python3.12, handler: app.handler}
        default_behavior:
          origin: app
          functions: {viewer-request: app}
        """,
    )

    assert load_config(path).functions["app"].code == configs.resolve()


# --- warnings ---


def _config_with(*runtimes: str) -> Config:
    """A Config holding one function per runtime (warnings read only the functions)."""
    functions = {
        f"f{i}": FunctionConfig(f"f{i}", runtime, Path("/srv/functions"), "app.handler")
        for i, runtime in enumerate(runtimes)
    }
    return Config(origins={}, default_behavior=Behavior("*", "app"), functions=functions)


def test_a_runtime_other_than_the_local_python_is_one_warning() -> None:
    config = _config_with("python3.12", "python3.13", "python3.12", "python3.11")

    assert config_warnings(config, python=(3, 11)) == [
        "functions with runtime python3.12 run on the local Python 3.11: f0, f2",
        "functions with runtime python3.13 run on the local Python 3.11: f1",
    ]
    assert config_warnings(config, python=(3, 13)) == [
        "functions with runtime python3.11 run on the local Python 3.13: f3",
        "functions with runtime python3.12 run on the local Python 3.13: f0, f2",
    ]


def test_no_warnings_when_runtimes_match_or_there_are_no_functions() -> None:
    assert config_warnings(_config_with("python3.12", "python3.12"), python=(3, 12)) == []
    assert config_warnings(_config_with()) == []
