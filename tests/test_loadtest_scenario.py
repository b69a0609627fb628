"""Scenario files and the traffic they make: the mix, Zipf popularity, phases, bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from edgesim.errors import ConfigError
from edgesim.loadtest.driver import intended_time
from edgesim.loadtest.scenario import Load, Phase, read_scenario, simple_scenario
from edgesim.loadtest.traffic import Traffic

GOOD = """\
seed: 7
requests:
  - url: http://127.0.0.1:9000/img/{n}.jpg
    objects: 100
    zipf_exponent: 1.0
    weight: 3
    headers: {Accept-Encoding: gzip}
    cookies: {session: abc, theme: dark}
  - url: http://127.0.0.1:9000/api/cart
    method: post
    body: '{"item": 1}'
phases:
  - {name: ramp, duration: 2, rate: [10, 100]}
  - {name: steady, duration: 3, rate: 100}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_scenario_file_is_read_whole(tmp_path):
    scenario = read_scenario(write(tmp_path, GOOD), relative=False)
    images, cart = scenario.requests
    assert (images.host, images.port, images.path, images.objects) == (
        "127.0.0.1", 9000, "/img/{n}.jpg", 100,
    )  # fmt: skip
    assert images.weight == 3 and images.zipf_exponent == 1.0
    assert ("Cookie", "session=abc; theme=dark") in images.headers
    assert cart.method == "POST" and cart.body == b'{"item": 1}'
    assert [p.name for p in scenario.phases] == ["ramp", "steady"]
    assert scenario.phases[0].rate == Load(10, 100)
    assert scenario.open_loop and scenario.seed == 7


def test_requests_are_rendered_as_http_1_1(tmp_path):
    traffic = Traffic(read_scenario(write(tmp_path, GOOD), relative=False), seed=1)
    seen = {}
    for _ in range(200):
        key, data = traffic.next()
        seen[data.split(b" ", 1)[0]] = data
    assert key == ("http", "127.0.0.1", 9000)
    post = seen[b"POST"]
    assert post.startswith(b"POST /api/cart HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n")
    assert b"Content-Length: 11\r\n" in post and post.endswith(b'\r\n\r\n{"item": 1}')
    get = seen[b"GET"]
    assert get.startswith(b"GET /img/") and b"Cookie: session=abc; theme=dark\r\n" in get


def test_zipf_popularity_and_weights(tmp_path):
    traffic = Traffic(read_scenario(write(tmp_path, GOOD), relative=False), seed=3)
    paths = Counter(traffic.next()[1].split(b" ", 2)[1] for _ in range(20_000))
    images = {p: n for p, n in paths.items() if p.startswith(b"/img/")}
    # Object 0 is the most popular, and with exponent 1 about twice as popular as object 1.
    assert max(images, key=images.__getitem__) == b"/img/0.jpg"
    assert 1.6 < images[b"/img/0.jpg"] / images[b"/img/1.jpg"] < 2.5
    assert images[b"/img/1.jpg"] > images[b"/img/50.jpg"]
    # Weights 3:1.
    assert 2.6 < sum(images.values()) / paths[b"/api/cart"] < 3.4


def test_the_same_seed_gives_the_same_sequence(tmp_path):
    scenario = read_scenario(write(tmp_path, GOOD), relative=False)
    one, two, other = (Traffic(scenario, seed=s) for s in (11, 11, 12))
    first = [one.next() for _ in range(500)]
    assert first == [two.next() for _ in range(500)]
    assert first != [other.next() for _ in range(500)]


def test_a_ramp_is_integrated_exactly():
    phase = Phase("ramp", 10, rate=Load(0, 100))  # 0 -> 100 req/s: 500 requests in 10 s
    assert intended_time(phase, 0) == 0
    assert intended_time(phase, 500) == pytest.approx(10)
    assert intended_time(phase, 125) == pytest.approx(5)  # a quarter of them in the first half
    steady = Phase("steady", 1, rate=Load(200, 200))
    assert intended_time(steady, 199) == pytest.approx(0.995)


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [
        (
            "requests:\n  - url: http://h/a\n    wieght: 2\n",
            3,
            "requests[0].wieght",
            "did you mean 'weight'",
        ),
        ("requests:\n  - url: http://h/{n}\n", 2, "requests[0].url", "objects"),
        ("requests:\n  - url: http://h/a\n    objects: 5\n", 3, "requests[0].objects", "{n}"),
        ("requests:\n  - url: /a\n", 2, "requests[0].url", "is a path"),
        ("requests:\n  - url: ftp://h/a\n", 2, "requests[0].url", "neither a path"),
        ("requests:\n  - url: http://h/a\n    method: BREW\n", 3, "requests[0].method", "BREW"),
        (
            "requests:\n  - url: http://h/a\n    headers: {Host: x}\n",
            3,
            "requests[0].headers.Host",
            "load generator",
        ),
        ("requests:\n  - url: http://h/a\n    weight: 0\n", 3, "requests[0].weight", "more than 0"),
        ("requests: []\n", 1, "requests", "at least one"),
        ("seed: 1\n", 1, "requests", "missing"),
        (
            "requests:\n  - url: http://h/a\n"
            "phases:\n  - {duration: 1, rate: 5}\n  - {duration: 1, concurrency: 2}\n",
            3,
            "phases",
            "one kind",
        ),
        ("requests:\n  - url: http://h/a\nphases:\n  - {duration: 1}\n", 4, "phases[0]", "either"),
        (
            "requests:\n  - url: http://h/a\nphases:\n  - {duration: 1, rate: -5}\n",
            4,
            "phases[0].rate",
            "at least 0",
        ),
        (
            "requests:\n  - url: http://h/a\nphases:\n  - {duration: 1, rate: [0, 0]}\n",
            4,
            "phases[0].rate",
            "sends nothing",
        ),
        (
            "requests:\n  - url: http://h/a\nphases:\n  - {rate: 5}\n",
            4,
            "phases[0].duration",
            "missing",
        ),
    ],
)
def test_a_bad_scenario_names_file_line_and_key(tmp_path, text, line, path, message):
    file = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_scenario(file, relative=False)
    error = caught.value
    assert error.file == str(file)
    assert error.line == line
    assert error.path == path
    assert message in str(error)


def test_scenario_files_that_cannot_be_read(tmp_path):
    with pytest.raises(ConfigError, match="unknown scenario file type"):
        read_scenario(write(tmp_path, "x", "s.ini"), relative=False)
    with pytest.raises(ConfigError, match="cannot read"):
        read_scenario(tmp_path / "missing.yaml", relative=False)
    with pytest.raises(ConfigError, match="invalid YAML"):
        read_scenario(write(tmp_path, "requests: [\n"), relative=False)


def test_with_config_urls_are_paths_on_the_edge(tmp_path):
    scenario = simple_scenario(["/a", "/b?x=1"], relative=True).resolve("http://127.0.0.1:8123")
    assert [(s.host, s.port, s.path) for s in scenario.requests] == [
        ("127.0.0.1", 8123, "/a"), ("127.0.0.1", 8123, "/b?x=1"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="give paths on the edge"):
        simple_scenario(["http://127.0.0.1:1/a"], relative=True)
