"""The Lambda Python runtime, as it behaves inside one execution environment.

Runs in the worker process after ``limits.enter_sandbox``: it imports the
handler module (the Init phase, whose length is the reported Init Duration)
and then answers ``invoke`` messages one at a time. What user code can observe
follows the AWS Lambda Python runtime interface client
(aws/aws-lambda-python-runtime-interface-client, ``awslambdaric/bootstrap.py``,
``lambda_context.py``, ``lambda_runtime_marshaller.py``):

* the ``context`` object and its fields (python-context.md);
* stdout and stderr unbuffered; a handler on the root logger printing
  ``[LEVEL]\\t<UTC time>Z\\t<request id>\\t<message>``, with the root level left
  at Python's default (WARNING) as the runtime does unless advanced logging
  controls set ``AWS_LAMBDA_LOG_LEVEL`` (python-logging.md);
* error payloads ``{errorMessage, errorType, requestId, stackTrace}`` and the
  runtime's fault names: ``Runtime.ImportModuleError``,
  ``Runtime.HandlerNotFound``, ``Runtime.UserCodeSyntaxError``,
  ``Runtime.MalformedHandlerName``, ``Runtime.BuiltInModuleConflict``,
  ``Runtime.MarshalError`` (python-exceptions.md);
* an unhandled error logged as ``[ERROR] Type: message`` and its traceback,
  indented with U+00A0 as the runtime does. The runtime joins those lines
  with ``\\r`` into one CloudWatch event; here they are separate lines.

Standard library, ``protocol`` and orjson only: nothing else of edgesim is
loaded where user code runs. orjson parses the proxy's frames, a fifth of the
runtime's work with the standard library's parser; they read the same
(``protocol``), and user code could import orjson from the same environment
anyway. Results are marshalled with the standard library's encoder, as the
Lambda runtime marshals them (``lambda_runtime_marshaller.py``): orjson would
also take values that the runtime refuses with ``Runtime.MarshalError`` (a
``uuid.UUID``, an ``Enum``), and a function that works here must work there.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import io
import logging
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

import orjson

from . import protocol

__all__ = ["CognitoIdentity", "Fault", "LambdaContext", "load_handler", "serve"]

Handler = Callable[[Any, "LambdaContext"], Any]
ErrorPayload = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

_INDENT = "\u00a0"
_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"


class _Current:
    """The invocation in progress (for the logging filter) and the environment.

    The runtime reads the context's fields from the environment variables on
    every invocation; they never change, so they are read once after Init.
    """

    request_id = ""
    environment: dict[str, str] = {}


class Fault(Exception):
    """A runtime fault with a ``Runtime.*`` type, as opposed to a user exception."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class CognitoIdentity:
    """``context.identity``: an object whose fields are None for CloudFront events."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self) -> None:
        self.cognito_identity_id: str | None = None
        self.cognito_identity_pool_id: str | None = None


class LambdaContext:
    """The ``context`` argument (Lambda Developer Guide, python-context.md).

    Values come from the environment variables, as in the real runtime, so
    ``memory_limit_in_mb`` is a string. ``client_context`` is None: CloudFront
    sends none.
    """

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        env = _Current.environment
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context: Any = None
        self.identity = CognitoIdentity()
        self.tenant_id: str | None = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the function times out; never negative."""
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg: object) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},function_version={self.function_version}])"
        )


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _Current.request_id
        return True


class _LambdaLogHandler(logging.Handler):
    def __init__(self, stream: io.TextIOBase) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._stream.write(self.format(record))
        except Exception:
            self.handleError(record)


def _open_streams() -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    """Unbuffered text stdout/stderr on fds 1 and 2 (the runtime wraps both unbuffered)."""
    streams = tuple(
        io.TextIOWrapper(
            io.FileIO(fd, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )
        for fd in (1, 2)
    )
    sys.stdout, sys.stderr = streams
    return streams[0], streams[1]


def _setup_logging(stream: io.TextIOWrapper) -> None:
    logging.Formatter.converter = time.gmtime
    handler = _LambdaLogHandler(stream)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


def load_handler(name: str) -> Handler:
    """Import ``module.function`` from the task root, raising ``Fault`` as the runtime names it."""
    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{name}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise Fault(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {exc}",
            trace,
        ) from None
    handler = getattr(module, function_name, None)
    if handler is None:
        raise Fault(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler  # type: ignore[no-any-return]


def _payload(message: str, error_type: str, trace: list[str], request_id: str) -> ErrorPayload:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": trace,
    }


def _exception_payload(exc_info: ExcInfo, request_id: str) -> ErrorPayload:
    """The payload of an exception raised by user code: its frames only, not the runtime's."""
    etype, value, tb = exc_info
    if isinstance(value, Fault):
        return _payload(value.message, value.error_type, value.trace, request_id)
    frames = traceback.extract_tb(tb)
    here = os.path.dirname(os.path.abspath(__file__))
    while frames and os.path.dirname(frames[0].filename) == here:
        del frames[0]
    return _payload(str(value), etype.__name__, traceback.format_list(frames), request_id)


def _log_error(error: ErrorPayload, stream: io.TextIOWrapper) -> None:
    head = "[ERROR]"
    if error["errorType"]:
        head += " " + error["errorType"]
    if error["errorMessage"]:
        head += (":" if error["errorType"] else "") + " " + error["errorMessage"]
    lines = [head, "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        for line in element.splitlines() or [""]:
            stripped = line.lstrip(" ")
            lines.append(_INDENT * (len(line) - len(stripped)) + stripped)
    stream.write("\n".join(lines) + "\n")


def _marshal_default(obj: object) -> object:
    # The runtime's encoder writes Decimal as a number (lambda_runtime_marshaller.py);
    # the standard json module can only do that through float.
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _mark_output() -> None:
    """End this exchange's output (``protocol.OUTPUT_MARK``), before its answer."""
    with contextlib.suppress(OSError):  # the function closed fd 1: its output is its own
        os.write(1, protocol.OUTPUT_MARK)


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def serve(channel: protocol.BlockingChannel, handler_name: str, arn: str, tmp: str) -> int:
    """Init, then invocations until the proxy closes the channel; returns the exit code."""
    stdout, stderr = _open_streams()
    _setup_logging(stdout)
    started = time.perf_counter()
    try:
        handler = load_handler(handler_name)
    except Exception:
        error = _exception_payload(sys.exc_info(), "")  # type: ignore[arg-type]
        init_ms = (time.perf_counter() - started) * 1000
        _log_error(error, stdout)
        stdout.flush()
        channel.send(
            protocol.encode(
                {"t": "init_error", "error": error, "init_ms": init_ms, "rss_kb": _rss_kb()}
            )
        )
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    _Current.environment = dict(os.environ)
    stdout.flush()
    stderr.flush()
    _mark_output()
    channel.send(
        protocol.encode({"t": "ready", "init_ms": init_ms, "rss_kb": _rss_kb(), "tmp": tmp})
    )
    channel.parse_with(orjson.loads)
    while (msg := channel.recv()) is not None:
        if msg["t"] != "invoke":
            continue
        request_id = str(msg["id"])
        _Current.request_id = request_id
        answer = _invoke(handler, msg, request_id, arn, stdout)
        _mark_output()
        channel.send(answer)
    return 0


def _invoke(
    handler: Handler, msg: dict[str, Any], request_id: str, arn: str, stdout: io.TextIOWrapper
) -> bytes:
    # From now: it may have waited in the queue behind others (protocol docstring).
    deadline_ms = int(time.time() * 1000) + int(msg["timeout_ms"])
    context = LambdaContext(request_id, deadline_ms, arn)
    started = time.perf_counter_ns()
    try:
        result = handler(msg["event"], context)
    except Exception:
        error = _exception_payload(sys.exc_info(), request_id)  # type: ignore[arg-type]
    else:
        duration = time.perf_counter_ns() - started
        try:
            return protocol.encode(
                {
                    "t": "result",
                    "id": request_id,
                    "duration_ns": duration,
                    "rss_kb": _rss_kb(),
                    "payload": result,
                },
                default=_marshal_default,
            )
        except Exception as exc:
            error = _payload(
                f"Unable to marshal response: {exc}", "Runtime.MarshalError", [], request_id
            )
    duration = time.perf_counter_ns() - started
    _log_error(error, stdout)
    return protocol.encode(
        {
            "t": "result",
            "id": request_id,
            "duration_ns": duration,
            "rss_kb": _rss_kb(),
            "error": error,
        }
    )
