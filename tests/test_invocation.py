"""``edgesim event`` and ``edgesim invoke`` as a user runs them: real subprocesses, real workers.

Events come from the codec the edge uses; each test feeds what ``event``
printed to a real handler through ``invoke`` or checks its fields against
the event structure CloudFront documents (lambda-event-structure.md).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgesim.config import parse_config
from edgesim.hooks import EventType
from edgesim.invocation import invoke, render
from edgesim.sample_events import EventSpec, parse_header, sample_event

HANDLERS = """\
import json


def echo(event, context):
    print("saw", event["Records"][0]["cf"]["config"]["eventType"])
    return event["Records"][0]["cf"]["request"]


def fail(event, context):
    print("about to fail")
    raise KeyError("action")


def anything(event, context):
    return {"got": event}
"""

CONFIG = """\
origins:
  app: {url: "http://127.0.0.1:9"}
distribution: {id: E2TEST0001, domain: d2test.cloudfront.net}
functions:
  echo: {runtime: python3.11, code: ./fns, handler: handlers.echo}
  fail: {runtime: python3.11, code: ./fns, handler: handlers.fail}
  anything: {runtime: python3.11, code: ./fns, handler: handlers.anything}
default_behavior: {origin: app}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "fns").mkdir()
    (tmp_path / "fns" / "handlers.py").write_text(HANDLERS)
    (tmp_path / "edgesim.yaml").write_text(CONFIG)
    return tmp_path


def edgesim(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgesim.cli", *args],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_event_then_invoke_round_trips_through_a_real_worker(project: Path) -> None:
    made = edgesim(
        project,
        "event",
        "viewer-request",
        "--uri",
        "/x",
        "--header",
        "accept=text/html",
        "--header",
        "cookie=a=1",
        "--querystring",
        "q=1",
        "--config",
        "edgesim.yaml",
    )
    assert made.returncode == 0, made.stderr
    (project / "event.json").write_text(made.stdout)
    event = json.loads(made.stdout)
    cf = event["Records"][0]["cf"]
    assert cf["config"]["eventType"] == "viewer-request"
    assert cf["config"]["distributionId"] == "E2TEST0001"
    assert len(cf["config"]["requestId"]) == 56
    request = cf["request"]
    assert request["uri"] == "/x" and request["querystring"] == "q=1"
    assert request["clientIp"] == "203.0.113.10"
    assert request["headers"]["host"] == [{"key": "Host", "value": "d2test.cloudfront.net"}]
    assert request["headers"]["cookie"] == [{"key": "cookie", "value": "a=1"}]
    assert "body" not in request and "origin" not in request and "response" not in cf

    ran = edgesim(project, "invoke", "echo", "--event", "event.json")  # ./edgesim.yaml
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("Test of echo: Succeeded\n")
    response = ran.stdout.split("Response\n", 1)[1].split("\n\nFunction Logs\n", 1)[0]
    assert json.loads(response) == request
    logs = ran.stdout.split("Function Logs\n", 1)[1]
    assert "saw viewer-request" in logs
    assert "START RequestId: " in logs and "END RequestId: " in logs
    report = [line for line in logs.splitlines() if line.startswith("REPORT RequestId: ")]
    assert report and "Init Duration" in report[0]  # a real worker's cold start


def test_invoke_of_a_failing_function_exits_non_zero_with_its_error_payload(
    project: Path,
) -> None:
    (project / "event.json").write_text(edgesim(project, "event", "viewer-request").stdout)
    ran = edgesim(project, "invoke", "fail", "--event", "event.json")
    assert ran.returncode == 1
    assert ran.stdout.startswith("Test of fail: Failed\n")
    error = json.loads(ran.stdout.split("Error\n", 1)[1].split("\n\nFunction Logs\n", 1)[0])
    assert error["errorType"] == "KeyError" and error["errorMessage"] == "'action'"
    assert "about to fail" in ran.stdout and "[ERROR] KeyError: 'action'" in ran.stdout


def test_invoke_refuses_bad_input_with_a_clear_message(project: Path) -> None:
    (project / "event.json").write_text('{"Records": [\n  {"cf": }\n]}')
    bad_json = edgesim(project, "invoke", "echo", "--event", "event.json")
    assert bad_json.returncode == 2
    assert "event.json:2:10: invalid JSON" in bad_json.stderr

    (project / "event.json").write_text("{}")
    unknown = edgesim(project, "invoke", "ehco", "--event", "event.json")
    assert unknown.returncode == 2 and "did you mean 'echo'?" in unknown.stderr

    missing = edgesim(project, "invoke", "echo", "--event", "nowhere.json")
    assert missing.returncode == 2 and "nowhere.json: cannot read the event" in missing.stderr

    no_config = edgesim(project, "invoke", "echo", "--event", "event.json", "--config", "x.yaml")
    assert no_config.returncode == 2 and "x.yaml" in no_config.stderr


def test_a_cloudfront_functions_event_is_refused_for_a_lambda_function(project: Path) -> None:
    config = parse_config(CONFIG, base_dir=project)
    event = {"version": "1.0", "context": {"eventType": "viewer-request"}, "request": {}}
    with pytest.raises(ValueError, match="CloudFront Functions test event"):
        invoke(config, "echo", event)


def test_a_non_lambda_event_runs_anyway_with_a_warning(project: Path) -> None:
    config = parse_config(CONFIG, base_dir=project)
    result = invoke(config, "anything", {"hello": [1, 2]})
    assert result.succeeded and result.output == {"got": {"hello": [1, 2]}}
    assert result.warnings and "not a Lambda@Edge event" in result.warnings[0]
    assert "Response" in render(result) and result.request_id in render(result)


@pytest.mark.parametrize("event_type", list(EventType))
def test_each_event_type_has_the_fields_cloudfront_documents(event_type: EventType) -> None:
    spec = EventSpec(
        uri="/p",
        method="POST" if event_type.value.endswith("request") else "GET",
        body=b"{}" if event_type.value.endswith("request") else None,
        status=404 if event_type.value.endswith("response") else None,
        origin="http://origin.test:8080/v1" if event_type.value.startswith("origin") else None,
    )
    cf = sample_event(event_type, spec)["Records"][0]["cf"]  # type: ignore[index]
    request = cf["request"]
    assert cf["config"]["eventType"] == event_type.value
    assert ("body" in request) == event_type.value.endswith("request")
    assert ("origin" in request) == event_type.value.startswith("origin")
    assert ("response" in cf) == event_type.value.endswith("response")
    if "body" in request:
        assert base64.b64decode(request["body"]["data"]) == b"{}"
        assert request["body"]["action"] == "read-only"
    if "origin" in request:
        custom = request["origin"]["custom"]
        where = (custom["domainName"], custom["port"], custom["path"])
        assert where == ("origin.test", 8080, "/v1")
        # Origin events show the request as it goes to the origin.
        assert request["headers"]["x-forwarded-for"][0]["value"] == "203.0.113.10"
        assert "via" in request["headers"]
    if "response" in cf:
        assert cf["response"]["status"] == "404"
        assert cf["response"]["statusDescription"] == "Not Found"


@pytest.mark.parametrize(
    ("event_type", "spec", "message"),
    [
        (EventType.VIEWER_RESPONSE, EventSpec(body=b"x"), "--body is for viewer-request"),
        (EventType.VIEWER_REQUEST, EventSpec(origin="http://a.test"), "--origin is for origin"),
        (EventType.ORIGIN_REQUEST, EventSpec(status=200), "--status and --response-header"),
        (EventType.ORIGIN_RESPONSE, EventSpec(status=99), "from 100 to 599"),
        (EventType.VIEWER_REQUEST, EventSpec(uri="x"), "must start with '/'"),
        (EventType.VIEWER_REQUEST, EventSpec(method="FETCH"), "--method must be one of"),
        (EventType.VIEWER_REQUEST, EventSpec(client_ip="1.2.3"), "not an IP address"),
        (EventType.VIEWER_REQUEST, EventSpec(querystring="a b"), "can't contain spaces"),
        (
            EventType.VIEWER_REQUEST,
            EventSpec(headers=[("X-Cache", "Hit")]),
            "never shows this header",
        ),
        (EventType.ORIGIN_REQUEST, EventSpec(origin="ftp://a.test"), "--origin:"),
    ],
)
def test_event_options_that_do_not_fit_are_refused(
    event_type: EventType, spec: EventSpec, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sample_event(event_type, spec)


def test_headers_are_name_value_pairs() -> None:
    assert parse_header("accept=text/html") == ("accept", "text/html")
    assert parse_header("cookie=a=1; b=2") == ("cookie", "a=1; b=2")
    assert parse_header("X-A: b") == ("X-A", "b")
    for bad in ("novalue", "bad name=1", "=1"):
        with pytest.raises(ValueError, match="is not a header"):
            parse_header(bad)


def test_event_with_a_bad_option_exits_2(tmp_path: Path) -> None:
    ran = edgesim(tmp_path, "event", "viewer-request", "--header", "oops")
    assert ran.returncode == 2 and "is not a header" in ran.stderr and ran.stdout == ""
