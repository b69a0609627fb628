"""Node.js Lambda@Edge and CloudFront Functions in the config: what loads, and what each bad
input gets (file, line, key path).

CloudFront rules: functions-javascript-runtime-features.html, cloudfront-limits.html,
kvs-with-functions-create-s3-kvp.html, edge-functions-restrictions.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgesim.config import config_warnings, load_config
from edgesim.config.js_source import unsupported_syntax
from edgesim.config.schema import Behavior, Config, FunctionConfig
from tests.test_config_functions import assert_error, load_error, write

CFF = "function handler(event) {\n  return event.request;\n}\n"


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "index.mjs").write_text("export const handler = async (e) => e;\n")
    (functions / "cjs.js").write_text("exports.handler = async (e) => e;\n")
    (functions / "rewrite.js").write_text(CFF)
    (functions / "kvs.json").write_text(json.dumps({"data": [{"key": "a", "value": "1"}]}))
    folder = tmp_path / "configs"
    folder.mkdir()
    return folder


def test_node_and_cloudfront_functions_load(configs: Path) -> None:
    path = write(
        configs,
        """\
        origins:
          app: {url: http://127.0.0.1:3000}
        functions:
          esm: {runtime: nodejs22.x, code: ../functions, handler: index.handler}
          cjs: {runtime: nodejs18.x, code: ../functions, handler: cjs.handler}
          rewrite:
            runtime: cloudfront-js-2.0
            code: ../functions/rewrite.js
            key_value_store: ../functions/kvs.json
            compute_budget_ms: 2.5
        default_behavior:
          origin: app
          functions: {viewer-request: rewrite, origin-request: esm, origin-response: cjs}
        """,
    )
    config = load_config(path)
    functions = config.functions
    assert functions["esm"].engine == functions["cjs"].engine == "node"
    rewrite = functions["rewrite"]
    assert rewrite.engine == "cloudfront-js"
    assert rewrite.code == (configs.parent / "functions" / "rewrite.js").resolve()
    assert rewrite.key_value_store == (configs.parent / "functions" / "kvs.json").resolve()
    assert rewrite.compute_budget_ms == 2.5


def _cff(configs: Path, body: str, *, runtime: str = "cloudfront-js-1.0") -> str:
    (configs.parent / "functions" / "f.js").write_text(body)
    return f"""\
        origins:
          app: {{url: http://127.0.0.1:3000}}
        functions:
          f:
            runtime: {runtime}
            code: ../functions/f.js
        default_behavior: {{origin: app}}
        """


@pytest.mark.parametrize(
    ("body", "line", "what", "fine_on_2_0"),
    [
        ("const a = 1;\nfunction handler(e) { return e.request; }", 1, 'Token "const"', True),
        ("function handler(e) {\n  let r = e.request;\n  return r;\n}", 2, 'Token "let"', True),
        ("async function handler(e) { return e.request; }", 1, 'Token "async"', True),
        ("import cf from 'cloudfront';\nfunction handler(e) { return 1; }", 1, "import", True),
        ("function handler(e) { return e.request?.uri; }", 1, 'Token "?."', True),
        ("function handler(e) { var {a} = e; return a; }", 1, "destructuring", True),
        ("function handler(e) {\n for (var k of [1]) {} }", 2, 'Token "of"', True),
        ("class A {}\nfunction handler(e) { return e.request; }", 1, 'Token "class"', True),
    ],
)
def test_cloudfront_js_1_0_refuses_what_it_cannot_parse(
    configs: Path, body: str, line: int, what: str, fine_on_2_0: bool
) -> None:
    error, path = load_error(configs, _cff(configs, body))
    assert_error(error, path, 6, "functions.f.code", what)
    assert f"f.js:{line}: SyntaxError: " in error.message
    # The check is 1.0's: 2.0 code is parsed by the engine itself, at Init.
    assert load_config(write(configs, _cff(configs, body, runtime="cloudfront-js-2.0")))


def test_the_1_0_check_skips_strings_comments_templates_regexes_and_property_names() -> None:
    source = """
    // const in a comment; let it be
    /* async await class */
    var s = 'const' + "let" + `import ${ "x" + `nested ${1} const` } let`;
    var re = /const|let/g, o = { class: 1, let: 2 }, d = a / b / c;
    o.const = o.let + o.class;
    var f = (x) => x ** 2;
    function handler(event, ...rest) { return event.request; }
    """
    assert unsupported_syntax(source) is None


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-2.0, code: ../functions/rewrite.js, memory: 128}
            default_behavior: {origin: app}
            """,
            3,
            "functions.f.memory",
            "a CloudFront Function has no memory: AWS fixes it (2 MB)",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-2.0, code: ../functions/rewrite.js, timeout: 1}
            default_behavior: {origin: app}
            """,
            3,
            "functions.f.timeout",
            "AWS fixes it",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-3.0, code: ../functions/rewrite.js}
            default_behavior: {origin: app}
            """,
            3,
            "functions.f.runtime",
            "unknown runtime 'cloudfront-js-3.0'",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-2.0, code: ../functions/nothing.js}
            default_behavior: {origin: app}
            """,
            3,
            "functions.f.code",
            "does not exist",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-2.0, code: ../functions/rewrite.js, compute_budget: 2}
            default_behavior: {origin: app}
            """,
            3,
            "functions.f.compute_budget",
            "compute_budget_ms",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-2.0, code: ../functions/rewrite.js, compute_budget_ms: 0}
            default_behavior: {origin: app}
            """,
            3,
            "functions.f.compute_budget_ms",
            "must be more than 0",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f:
                runtime: cloudfront-js-1.0
                code: ../functions/rewrite.js
                key_value_store: ../functions/kvs.json
            default_behavior: {origin: app}
            """,
            6,
            "functions.f.key_value_store",
            "only cloudfront-js-2.0 has",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-2.0, code: ../functions/rewrite.js}
            default_behavior:
              origin: app
              functions: {origin-request: f}
            """,
            6,
            "default_behavior.functions.origin-request",
            "those run only at viewer-request and viewer-response",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-2.0, code: ../functions/rewrite.js}
            default_behavior:
              origin: app
              functions: {viewer-request: {function: f, include_body: true}}
            """,
            6,
            "default_behavior.functions.viewer-request",
            "cannot access the request body",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              f: {runtime: cloudfront-js-2.0, code: ../functions/rewrite.js}
              n: {runtime: nodejs20.x, code: ../functions, handler: cjs.handler}
            default_behavior:
              origin: app
              functions: {viewer-request: f, viewer-response: n}
            """,
            7,
            "default_behavior.functions.viewer-response",
            "can't have a CloudFront Function and a Lambda@Edge function at viewer events",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              n: {runtime: nodejs20.x, code: ../functions, handler: missing.handler}
            default_behavior: {origin: app}
            """,
            3,
            "functions.n.handler",
            "looked for missing.js, missing.mjs, missing.cjs",
        ),
        (
            """\
            origins: {app: {url: http://127.0.0.1:3000}}
            functions:
              n: {runtime: nodejs16.x, code: ../functions, handler: cjs.handler}
            default_behavior: {origin: app}
            """,
            3,
            "functions.n.runtime",
            "edgesim does not run nodejs16.x",
        ),
    ],
)
def test_bad_js_function_configs(
    configs: Path, text: str, line: int, key: str, fragment: str
) -> None:
    error, path = load_error(configs, text)
    assert_error(error, path, line, key, fragment)


def test_code_over_10_kb_is_refused(configs: Path) -> None:
    body = CFF + "// " + "x" * (10 * 1024) + "\n"
    error, path = load_error(configs, _cff(configs, body, runtime="cloudfront-js-2.0"))
    assert_error(error, path, 6, "functions.f.code", "take at most 10 KB of code")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("not json", "is not UTF-8 JSON"),
        (json.dumps([{"key": "a", "value": "b"}]), '{"data": [{"key": ..., "value": ...}'),
        (json.dumps({"data": [{"key": "a"}]}), "data[0] must be an object with exactly"),
        (json.dumps({"data": [{"key": "a", "value": 1}]}), "must be strings"),
        (json.dumps({"data": [{"key": "k" * 513, "value": "v"}]}), "at most 512"),
        (json.dumps({"data": [{"key": "a", "value": "v" * 1025}]}), "at most 1024"),
        (
            json.dumps({"data": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}),
            "data[1]: the key 'a' is there twice",
        ),
    ],
)
def test_bad_key_value_store_files(configs: Path, data: str, fragment: str) -> None:
    (configs.parent / "functions" / "bad.json").write_text(data)
    text = """\
        origins: {app: {url: http://127.0.0.1:3000}}
        functions:
          f:
            runtime: cloudfront-js-2.0
            code: ../functions/rewrite.js
            key_value_store: ../functions/bad.json
        default_behavior: {origin: app}
        """
    error, path = load_error(configs, text)
    assert_error(error, path, 6, "functions.f.key_value_store", fragment)


def test_a_key_value_store_over_5_mb_is_refused(configs: Path) -> None:
    pairs = [{"key": f"k{i}", "value": "v" * 1000} for i in range(5300)]
    (configs.parent / "functions" / "big.json").write_text(json.dumps({"data": pairs}))
    text = """\
        origins: {app: {url: http://127.0.0.1:3000}}
        functions:
          f:
            runtime: cloudfront-js-2.0
            code: ../functions/rewrite.js
            key_value_store: ../functions/big.json
        default_behavior: {origin: app}
        """
    error, path = load_error(configs, text)
    assert_error(error, path, 6, "functions.f.key_value_store", "over 5 MB")


def test_a_node_runtime_other_than_the_local_node_is_one_warning() -> None:
    functions = {
        f"f{i}": FunctionConfig(f"f{i}", runtime, Path("/srv"), "index.handler")
        for i, runtime in enumerate(("nodejs18.x", "nodejs20.x", "nodejs18.x"))
    }
    config = Config(origins={}, default_behavior=Behavior("*", "app"), functions=functions)
    assert config_warnings(config, node=20) == [
        "functions with runtime nodejs18.x run on the local Node.js 20: f0, f2"
    ]
    assert config_warnings(config, node=18) == [
        "functions with runtime nodejs20.x run on the local Node.js 18: f1"
    ]
