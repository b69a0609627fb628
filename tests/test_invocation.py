"""``edgesim event`` and ``edgesim invoke`` as a user runs them: real subprocesses, real workers.

Events come from the codec the edge uses; each test feeds what ``event``
printed to a real handler through ``invoke`` or checks its fields against
the event structure CloudFront documents (lambda-event-structure.md,
functions-event-structure.md). A CloudFront Function's test reports what
CloudFront's TestFunction does (test-function.md, API_TestResult).
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

CFF_TAG = """\
function handler(event) {
  var request = event.request;
  console.log('tagging ' + request.uri + ' for ' + event.viewer.ip);
  request.headers['x-tagged'] = {value: event.context.distributionId};
  return request;
}
"""
CFF_RESPONSE = """\
async function handler(event) {
  var response = event.response;
  response.headers['x-seen-status'] = {value: String(response.statusCode)};
  return response;
}
"""
CFF_FAIL = """\
function handler(event) {
  console.log('about to fail');
  throw new TypeError('boom');
}
"""

CONFIG = """\
origins:
  app: {url: "http://127.0.0.1:9"}
distribution: {id: E2TEST0001, domain: d2test.cloudfront.net}
functions:
  echo: {runtime: python3.11, code: ./fns, handler: handlers.echo}
  fail: {runtime: python3.11, code: ./fns, handler: handlers.fail}
  anything: {runtime: python3.11, code: ./fns, handler: handlers.anything}
  tag: {runtime: cloudfront-js-1.0, code: ./cff/tag.js}
  stamp-status: {runtime: cloudfront-js-2.0, code: ./cff/status.js}
  cff-fail: {runtime: cloudfront-js-2.0, code: ./cff/fail.js}
default_behavior: {origin: app}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "fns").mkdir()
    (tmp_path / "fns" / "handlers.py").write_text(HANDLERS)
    (tmp_path / "cff").mkdir()
    (tmp_path / "cff" / "tag.js").write_text(CFF_TAG)
    (tmp_path / "cff" / "status.js").write_text(CFF_RESPONSE)
    (tmp_path / "cff" / "fail.js").write_text(CFF_FAIL)
    (tmp_path / "edgesim.yaml").write_text(CONFIG)
    return tmp_path


def section(stdout: str, title: str) -> str:
    """The text under one heading of ``invoke``'s output, up to the next blank line."""
    return stdout.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]


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
    with pytest.raises(ValueError, match="CloudFront Functions test event") as caught:
        invoke(config, "echo", event)
    assert "takes a Lambda@Edge event" in str(caught.value)
    assert "`edgesim event viewer-request`" in str(caught.value)


# -- CloudFront Functions: TestFunction's event objects and its report ---------------------


def test_a_cloudfront_function_event_then_invoke_reports_like_test_function(
    project: Path,
) -> None:
    made = edgesim(
        project,
        "event",
        "viewer-request",
        "--cloudfront-function",
        "--uri",
        "/shop",
        "--header",
        "accept=text/html",
        "--header",
        "accept=*/*",
        "--header",
        "cookie=a=1; b=2",
        "--querystring",
        "q=1&q=2",
        "--client-ip",
        "198.51.100.7",
        "--config",
        "edgesim.yaml",
    )
    assert made.returncode == 0, made.stderr
    event = json.loads(made.stdout)
    # The shape of functions-event-structure.md, from the CloudFront Functions codec.
    assert event["version"] == "1.0"
    assert event["context"]["eventType"] == "viewer-request"
    assert event["context"]["distributionId"] == "E2TEST0001"
    assert event["viewer"] == {"ip": "198.51.100.7"}
    request = event["request"]
    assert request["headers"]["host"] == {"value": "d2test.cloudfront.net"}
    accept = {"value": "text/html", "multiValue": [{"value": "text/html"}, {"value": "*/*"}]}
    assert request["headers"]["accept"] == accept
    assert "cookie" not in request["headers"]
    assert request["cookies"] == {"a": {"value": "1"}, "b": {"value": "2"}}
    assert request["querystring"]["q"]["multiValue"] == [{"value": "1"}, {"value": "2"}]
    assert "response" not in event and "Records" not in event
    (project / "event.json").write_text(made.stdout)

    ran = edgesim(project, "invoke", "tag", "--event", "event.json")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("Test of tag: Succeeded\n")
    assert 0 <= int(section(ran.stdout, "Compute utilization")) <= 100
    output = json.loads(section(ran.stdout, "Function output"))
    assert output["request"]["headers"]["x-tagged"] == {"value": "E2TEST0001"}
    assert output["request"]["cookies"] == request["cookies"]
    # FunctionExecutionLogs: what the function logged, and nothing else.
    logs = ran.stdout.split("\nFunction execution logs\n", 1)[1]
    assert logs.splitlines() == ["tagging /shop for 198.51.100.7"]
    assert "Request ID" not in ran.stdout and "REPORT" not in ran.stdout


def test_a_viewer_response_test_event_carries_the_response(project: Path) -> None:
    made = edgesim(
        project,
        "event",
        "viewer-response",
        "--cloudfront-function",
        "--status",
        "404",
        "--response-header",
        "set-cookie=s=1; Path=/",
        "--response-header",
        "content-type=text/plain",
    )
    assert made.returncode == 0, made.stderr
    response = json.loads(made.stdout)["response"]
    assert (response["statusCode"], response["statusDescription"]) == (404, "Not Found")
    assert response["headers"] == {"content-type": {"value": "text/plain"}}
    assert response["cookies"] == {"s": {"value": "1", "attributes": "Path=/"}}
    (project / "event.json").write_text(made.stdout)
    ran = edgesim(project, "invoke", "stamp-status", "--event", "event.json")
    assert ran.returncode == 0, ran.stderr
    output = json.loads(section(ran.stdout, "Function output"))
    assert output["response"]["headers"]["x-seen-status"] == {"value": "404"}


def test_a_failing_cloudfront_function_exits_1_with_its_error_message(project: Path) -> None:
    event = {"version": "1.0", "context": {"eventType": "viewer-request"}, "request": {}}
    (project / "event.json").write_text(json.dumps(event))
    ran = edgesim(project, "invoke", "cff-fail", "--event", "event.json")
    assert ran.returncode == 1
    assert ran.stdout.startswith("Test of cff-fail: Failed\n")
    assert section(ran.stdout, "Function error message").startswith("TypeError: boom")
    assert ran.stdout.split("\nFunction execution logs\n", 1)[1].splitlines() == ["about to fail"]


def test_a_lambda_edge_event_is_refused_for_a_cloudfront_function(project: Path) -> None:
    (project / "event.json").write_text(edgesim(project, "event", "viewer-request").stdout)
    ran = edgesim(project, "invoke", "tag", "--event", "event.json")
    assert ran.returncode == 2 and ran.stdout == ""
    assert "this is a Lambda@Edge event" in ran.stderr
    assert "tag is a CloudFront Function (cloudfront-js-1.0)" in ran.stderr
    assert "edgesim event viewer-request --cloudfront-function" in ran.stderr


def test_the_aws_style_test_objects_run_from_the_command_line() -> None:
    root = Path(__file__).resolve().parent.parent
    objects = root / "functions" / "cloudfront" / "test-objects"
    for name in ("country-de.json", "country-fr.json"):
        ran = edgesim(
            root,
            "invoke",
            "country-redirect",
            "--config",
            "configs/javascript.yaml",
            "--event",
            str(objects / name),
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.startswith("Test of country-redirect: Succeeded\n")
        output = json.loads(section(ran.stdout, "Function output"))
        if name == "country-de.json":
            assert output["response"]["statusCode"] == 302
        else:
            assert output["request"]["uri"] == "/shop/cart"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "a test event object is a JSON object"),
        ({"request": {}}, "context.eventType must be 'viewer-request' or 'viewer-response'"),
        (
            {"context": {"eventType": "origin-request"}, "request": {}},
            "not 'origin-request' (CloudFront Functions run at viewer events only)",
        ),
        ({"context": {"eventType": "viewer-request"}}, 'has no "request"'),
        (
            {"context": {"eventType": "viewer-request"}, "request": {"uri": "shop"}},
            "request.uri must start with '/'",
        ),
        (
            {
                "context": {"eventType": "viewer-request"},
                "request": {"headers": {"Host": {"value": "a.test"}}},
            },
            "request.headers: 'Host' must be lowercase ('host')",
        ),
        (
            {
                "context": {"eventType": "viewer-request"},
                "request": {"headers": {"host": "a.test"}},
            },
            'request.headers.host must be an object like {"value": "..."}, not "a.test"',
        ),
        (
            {
                "context": {"eventType": "viewer-request"},
                "request": {"querystring": {"q": {"value": 1}}},
            },
            "request.querystring.q.value must be a string, not 1",
        ),
        (
            {
                "context": {"eventType": "viewer-request"},
                "request": {"cookies": {"a": {"value": "1", "multiValue": "1"}}},
            },
            "request.cookies.a.multiValue must be a list",
        ),
        (
            {
                "context": {"eventType": "viewer-response"},
                "request": {},
                "response": {"statusCode": "200"},
            },
            "response.statusCode must be an integer, not '200'",
        ),
        (
            {
                "context": {"eventType": "viewer-request"},
                "request": {"headers": {"x-big": {"value": "x" * 41_000}}},
            },
            "TestFunction takes at most 40,960",
        ),
    ],
)
def test_bad_cloudfront_function_test_events_are_refused_naming_the_field(
    project: Path, event: object, message: str
) -> None:
    config = parse_config(CONFIG, base_dir=project)
    with pytest.raises(ValueError) as caught:
        invoke(config, "tag", event)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("origin-request",), "CloudFront Functions run only at viewer-request and viewer-resp"),
        (("viewer-request", "--body", "x"), "CloudFront Functions can't read the request body"),
        (("viewer-request", "--status", "200"), "--status and --response-header are for viewer-"),
        (("viewer-request", "--header", "x-amz-cf-id=1"), "never shows this header"),
    ],
)
def test_cloudfront_function_events_refuse_options_that_do_not_fit(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    ran = edgesim(tmp_path, "event", *args, "--cloudfront-function")
    assert ran.returncode == 2 and ran.stdout == ""
    assert message in ran.stderr


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
