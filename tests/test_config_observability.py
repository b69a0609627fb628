"""The ``access_log`` and ``inspector`` config keys: what they accept and what a bad one gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesim.config import load_config
from edgesim.config.schema import AccessLogSettings, InspectorSettings
from tests.test_config import assert_error, load_error, write

REPO = Path(__file__).resolve().parent.parent
BASE = """\
origins:
  app: {url: http://127.0.0.1:3000}
default_behavior: {origin: app}
"""


def test_access_log_and_inspector_are_off_and_100_by_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "edge.yaml", BASE))
    assert config.access_log is None
    assert config.inspector == InspectorSettings(100)


def test_a_relative_access_log_is_beside_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "edge.yaml", BASE + "access_log: logs/access.log\n"))
    assert config.access_log == AccessLogSettings(tmp_path / "logs" / "access.log", False)
    config = load_config(
        write(
            tmp_path,
            "edge.yaml",
            BASE
            + "access_log: {path: /tmp/x.log, include_cookies: true}\ninspector: {requests: 0}\n",
        )
    )
    assert config.access_log == AccessLogSettings(Path("/tmp/x.log"), True)
    assert config.inspector == InspectorSettings(0)
    assert load_config(write(tmp_path, "edge.yaml", BASE + "access_log: null\n")).access_log is None


def test_the_same_keys_in_json_and_toml(tmp_path: Path) -> None:
    json_text = (
        '{"origins": {"app": {"url": "http://127.0.0.1:3000"}},'
        ' "default_behavior": {"origin": "app"},'
        ' "access_log": "a.log", "inspector": {"requests": 5}}'
    )
    toml_text = (
        'access_log = {path = "a.log", include_cookies = true}\n'
        "[inspector]\nrequests = 5\n"
        '[origins.app]\nurl = "http://127.0.0.1:3000"\n[default_behavior]\norigin = "app"\n'
    )
    from_json = load_config(write(tmp_path, "edge.json", json_text))
    from_toml = load_config(write(tmp_path, "edge.toml", toml_text))
    assert from_json.access_log == AccessLogSettings(tmp_path / "a.log")
    assert from_toml.access_log == AccessLogSettings(tmp_path / "a.log", True)
    assert from_json.inspector == from_toml.inspector == InspectorSettings(5)


@pytest.mark.parametrize(
    ("tail", "line", "key", "fragment"),
    [
        pytest.param(
            "acess_log: a.log\n", 4, "acess_log", "did you mean 'access_log'?", id="misspelt"
        ),
        pytest.param("access_log: 5\n", 4, "access_log", "expected a file path", id="number"),
        pytest.param(
            'access_log: ""\n', 4, "access_log", "must be a non-empty single line", id="empty"
        ),
        pytest.param(
            "access_log:\n  path: a.log\n  include_cookie: true\n",
            6,
            "access_log.include_cookie",
            "unknown key for access_log; did you mean 'include_cookies'?",
            id="misspelt-inner",
        ),
        pytest.param(
            "access_log: {include_cookies: true}\n",
            4,
            "access_log.path",
            "missing required key",
            id="no-path",
        ),
        pytest.param(
            "access_log: {path: a.log, include_cookies: 1}\n",
            4,
            "access_log.include_cookies",
            "expected true or false",
            id="not-bool",
        ),
        pytest.param(
            "access_log: .\n",
            4,
            "access_log",
            "is a folder; access_log names the log file",
            id="folder",
        ),
        pytest.param(
            "access_log: edge.yaml/x/access.log\n",
            4,
            "access_log",
            "is a file, so the log can't",
            id="under-a-file",
        ),
        pytest.param("inspector: 5\n", 4, "inspector", "expected a mapping", id="inspector-number"),
        pytest.param(
            "inspector: {request: 5}\n",
            4,
            "inspector.request",
            "did you mean 'requests'?",
            id="inspector-misspelt",
        ),
        pytest.param(
            "inspector: {requests: -1}\n",
            4,
            "inspector.requests",
            "must be 0 to 100000",
            id="negative",
        ),
        pytest.param(
            "inspector: {requests: 1.5}\n",
            4,
            "inspector.requests",
            "expected a whole number",
            id="fraction",
        ),
    ],
)
def test_bad_values_name_file_line_and_key(
    tmp_path: Path, tail: str, line: int, key: str, fragment: str
) -> None:
    error = load_error(tmp_path, BASE + tail)
    assert_error(error, tmp_path / "edge.yaml", line, key, fragment)


def test_the_example_config_documents_both_keys(tmp_path: Path) -> None:
    """configs/example.yaml shows access_log commented out; uncommented, it loads."""
    text = (REPO / "configs" / "example.yaml").read_text(encoding="utf-8")
    assert "\ninspector:" in text and "\n# access_log: " in text
    uncommented = text.replace("\n# access_log: ", "\naccess_log: ")
    (tmp_path / "public").mkdir()
    config = load_config(write(tmp_path, "example.yaml", uncommented))
    assert config.access_log is not None
    assert config.access_log.path.parent == tmp_path
    assert config.inspector.requests == 100
