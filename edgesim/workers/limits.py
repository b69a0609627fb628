"""The sandbox of one execution environment: limits, variables and a private /tmp.

Imported on both sides of the sandbox wall (standard library only): the proxy
builds a ``Sandbox`` spec with ``sandbox_spec``; the freshly forked worker
applies it with ``enter_sandbox`` before it imports any user code.

What the operating system enforces here (Lambda quotas from the Lambda
Developer Guide, gettingstarted-limits.md, and Lambda@Edge's restrictions,
lambda-at-edge-function-restrictions.html):

* ``RLIMIT_NOFILE`` 1024: "File descriptors: 1,024".
* ``RLIMIT_NPROC``: "Execution processes/threads: 1,024". The kernel counts
  this per user, so the cap is the user's current task count plus 1,024: a
  fork bomb stops there. The kernel does not apply it to root.
* ``RLIMIT_FSIZE`` 512 MB: /tmp is 512 MB and Lambda@Edge cannot raise it.
  Per file, not per folder: a disk quota would need a filesystem of its own.
* ``RLIMIT_CORE`` 0: no core dumps from crashing user code.
* A private /tmp: a fresh folder per environment, bind-mounted at /tmp in a
  private mount namespace when the process may do that (root), else exported
  as ``TMPDIR``. Removed by the proxy when the environment dies.

Memory is not an rlimit: ``RLIMIT_AS`` counts address space that runtimes
reserve and never touch. The proxy watches resident memory instead.

Not a limit but a scheduling class: the worker runs under ``SCHED_BATCH``,
so that a frame the proxy writes to it does not preempt the proxy on a core
they share. The proxy finishes what its loop has to do (more frames, the
responses of answers it read) and the worker runs when it sleeps; on a core
of its own the worker runs at once as before. On one core that halves the
proxy's context switches per hooked request (0.85 -> 0.32) and costs a
hooked hit 5% (Python) to 10% (CloudFront Functions) less CPU; Node.js,
whose runtime waits in epoll among threads of its own, is unchanged
(bench/README.md, "The cost of a hook").
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import resource
import signal
import sys
import time
import uuid
from typing import Any, TypedDict

__all__ = [
    "FILE_DESCRIPTORS",
    "PROCESSES",
    "TMP_BYTES",
    "Sandbox",
    "enter_sandbox",
    "lambda_environment",
    "log_stream_name",
    "nproc_cap",
    "preload",
    "sandbox_spec",
]

FILE_DESCRIPTORS = 1024
PROCESSES = 1024
TMP_BYTES = 512 * 1024 * 1024

_CLONE_NEWNS = 0x00020000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_PR_SET_PDEATHSIG = 1


class Sandbox(TypedDict):
    """What a worker needs to set itself up; travels as JSON to the zygote."""

    env: dict[str, str]  # the complete environment of the function
    task_root: str  # the package folder: cwd and first on sys.path
    handler: str  # "module.function"
    tmp_dir: str  # this environment's private /tmp folder
    nproc: int  # RLIMIT_NPROC
    arn: str  # context.invoked_function_arn
    # The inner runtime: "python" (runtime.serve), "node" (node_runtime.js on the
    # ``node`` executable) or "cloudfront-js" (cff_runtime.serve, ``options``).
    engine: str
    node: str  # the node executable, for "node"
    options: dict[str, Any]  # engine settings (CloudFront Functions: code, budget...)


def lambda_environment(
    *,
    function_name: str,
    region: str,
    memory: int,
    runtime: str,
    handler: str,
    task_root: str,
    runtime_dir: str,
    log_stream: str,
    version: str = "1",
    initialization_type: str = "on-demand",
    node: bool = False,
) -> dict[str, str]:
    """The variables a Lambda function sees, and nothing of the proxy's own.

    Names and values from "Defined runtime environment variables" (Lambda
    Developer Guide, configuration-envvars.md). Lambda@Edge allows no variables
    of one's own (lambda-at-edge-function-restrictions.html), so there are none.
    A Node.js function gets ``NODE_PATH`` (the task root) instead of ``PYTHONPATH``.
    """
    bindir = os.path.dirname(sys.executable)
    env = {
        "_HANDLER": handler,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": runtime_dir,
        "LANG": "en_US.UTF-8",
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": task_root,
        "TZ": ":UTC",
    }
    if node:
        del env["PYTHONPATH"]
        env["NODE_PATH"] = task_root
    return env


def log_stream_name(version: str = "1", now: float | None = None) -> str:
    """``YYYY/MM/DD/[version]<32 hex>``, one per execution environment."""
    day = time.strftime("%Y/%m/%d", time.gmtime(now))
    return f"{day}/[{version}]{uuid.uuid4().hex}"


def nproc_cap() -> int:
    """This user's running tasks plus Lambda's 1,024 (RLIMIT_NPROC counts per user)."""
    uid = os.getuid()
    tasks = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid == uid:
                tasks += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            continue  # exited while we counted
    return tasks + PROCESSES


def preload() -> None:
    """Load what ``enter_sandbox`` needs, once, before the zygote forks."""
    _libc()


def sandbox_spec(
    env: dict[str, str],
    *,
    task_root: str,
    handler: str,
    tmp_dir: str,
    nproc: int,
    arn: str,
    engine: str = "python",
    node: str = "",
    options: dict[str, Any] | None = None,
) -> Sandbox:
    return Sandbox(
        env=env,
        task_root=task_root,
        handler=handler,
        tmp_dir=tmp_dir,
        nproc=nproc,
        arn=arn,
        engine=engine,
        node=node,
        options=options or {},
    )


def enter_sandbox(spec: Sandbox, zygote_pid: int) -> str:
    """Apply ``spec`` to this freshly forked process; return the /tmp it sees.

    Runs before any user code. Order matters: a new session first (so the
    proxy can signal the whole process group), then death with the zygote,
    then the filesystem view, variables and limits.
    """
    os.setsid()
    _die_with_parent(zygote_pid)
    needed = [spec["task_root"], sys.prefix, sys.exec_prefix, *sys.path]
    if spec["engine"] == "node":  # exec'd after the mount: keep node and its runtime visible
        needed += [spec["node"], os.path.dirname(os.path.abspath(__file__))]
    tmp = _private_tmp(spec["tmp_dir"], needed)
    env = dict(spec["env"])
    if tmp != "/tmp":
        env["TMPDIR"] = tmp
    os.environ.clear()
    os.environ.update(env)
    os.chdir(spec["task_root"])
    _set_rlimits(spec["nproc"])
    # No wake-up preemption of the proxy (module docstring); a kernel without the
    # class leaves the default.
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    return tmp


@functools.cache
def _libc() -> ctypes.CDLL:
    """libc, loaded once (in the zygote, which calls this before forking)."""
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when the zygote dies (and the zygote dies with the proxy)."""
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the zygote died before prctl took effect
        os._exit(1)


def _private_tmp(path: str, needed: list[str]) -> str:
    """Bind ``path`` over /tmp in a private mount namespace; fall back to ``path``.

    Needs CAP_SYS_ADMIN (root). Mount propagation is made private first so the
    bind never shows outside this process tree. Not done when the package or
    the Python installation lives under /tmp: the bind would hide them.
    """
    if any(
        os.path.realpath(p) + "/" == "/tmp/" or os.path.realpath(p).startswith("/tmp/")
        for p in needed
        if p
    ):
        return path
    libc = _libc()
    if libc.unshare(_CLONE_NEWNS) != 0:
        return path
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return path
    if libc.mount(path.encode(), b"/tmp", None, _MS_BIND, None) != 0:
        return path
    return "/tmp"


def _set_rlimits(nproc: int) -> None:
    for which, wanted in (
        (resource.RLIMIT_NOFILE, FILE_DESCRIPTORS),
        (resource.RLIMIT_NPROC, nproc),
        (resource.RLIMIT_FSIZE, TMP_BYTES),
        (resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(which)
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(which, (value, value))
