"""The command line as a user runs it: real subprocesses, real signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _edgesim(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgesim.cli", *args]


@pytest.fixture
def demo() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``edgesim serve`` with no config, on ephemeral ports."""
    proc = subprocess.Popen(
        _edgesim("serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    lines = []
    while not lines or "curl -i" not in lines[-1]:
        lines.append(proc.stdout.readline())
        assert lines[-1], lines
    edge = re.search(r"edge listening on (http://\S+)", lines[0])
    admin = re.search(r"admin API on (http://\S+)", lines[1])
    assert edge and admin, lines
    yield proc, edge.group(1), admin.group(1)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_demo_serves_miss_then_hit_and_stops_cleanly_on_sigterm(
    demo: tuple[subprocess.Popen[str], str, str],
) -> None:
    proc, url, admin = demo
    with httpx.Client(timeout=10) as client:
        first = client.get(f"{url}/")
        second = client.get(f"{url}/")
        asset = client.get(f"{url}/static/logo.svg")
        moved = client.get(f"{url}/about-us")
        stats = client.get(f"{admin}/stats").json()
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert "Served through edgesim" in second.text
    assert second.headers["strict-transport-security"].startswith("max-age=")
    assert moved.status_code == 301
    assert moved.headers["location"] == "/about"
    assert moved.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert asset.headers["content-type"] == "image/svg+xml"
    assert stats["cache"]["entries"] >= 1
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_ctrl_c_stops_without_traceback(demo: tuple[subprocess.Popen[str], str, str]) -> None:
    proc, url, _ = demo
    assert httpx.get(f"{url}/", timeout=10).status_code == 200
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_validate_accepts_the_example_config() -> None:
    done = subprocess.run(
        _edgesim("validate", str(ROOT / "configs" / "example.yaml")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


@pytest.mark.parametrize("command", ["validate", "serve"])
def test_bad_config_exits_2_naming_file_line_and_key(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "edge.yaml"
    bad.write_text(
        "origins:\n"
        "  app:\n"
        "    url: http://127.0.0.1:3000\n"
        "default_behavior:\n"
        "  origin: app\n"
        "  cache:\n"
        "    min_tll: 5\n"
    )
    args = [str(bad)] if command == "validate" else ["--config", str(bad)]
    done = subprocess.run(
        _edgesim(command, *args), capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode == 2
    assert f"{bad}:7" in done.stderr
    assert "default_behavior.cache.min_tll" in done.stderr
    assert "min_ttl" in done.stderr  # the did-you-mean
    assert "Traceback" not in done.stderr


def test_quick_mode_proxies_one_origin(tmp_path: Path) -> None:
    origin = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    (tmp_path / "hello.txt").write_text("hi from origin")
    try:
        assert origin.stdout is not None
        port = re.search(r"port (\d+)", origin.stdout.readline())
        assert port
        edge = subprocess.Popen(
            _edgesim(
                "serve",
                "--origin",
                f"http://127.0.0.1:{port.group(1)}",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert edge.stdout is not None
            url = re.search(r"(http://\S+)", edge.stdout.readline())
            assert url
            response = httpx.get(f"{url.group(1)}/hello.txt", timeout=10)
            assert response.text == "hi from origin"
            assert response.headers["x-cache"] == "Miss from cloudfront"
            again = httpx.get(f"{url.group(1)}/hello.txt", timeout=10)
            assert again.headers["x-cache"] == "Hit from cloudfront"
        finally:
            edge.send_signal(signal.SIGTERM)
            edge.communicate(timeout=15)
    finally:
        origin.kill()
        origin.communicate()
