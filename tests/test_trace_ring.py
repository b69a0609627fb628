"""The bounded ring of answered exchanges behind the inspector (edgesim.trace.TraceRing)."""

from __future__ import annotations

from edgesim.models import Exchange, Headers, Request
from edgesim.trace import TraceRing, iso_time, wall_time


def _exchange(n: int) -> Exchange:
    request = Request("GET", f"/{n}", "", Headers())
    return Exchange(request, f"id-{n}", request)


def test_the_ring_keeps_the_latest_and_tells_what_came_after() -> None:
    ring = TraceRing(3)
    exchanges = [_exchange(n) for n in range(5)]
    for ex in exchanges[:2]:
        ring.add(ex)
    assert ring.after(None) == exchanges[:2]
    assert ring.after(exchanges[0]) == [exchanges[1]]
    assert ring.after(exchanges[1]) == []
    for ex in exchanges[2:]:
        ring.add(ex)
    assert len(ring) == 3
    assert list(ring.newest_first()) == exchanges[:1:-1]
    assert ring.find("id-4") is exchanges[4]
    assert ring.find("id-0") is None  # pushed out
    assert ring.after(exchanges[3]) == [exchanges[4]]
    # One that left the ring: everything kept is new to whoever saw it last.
    assert ring.after(exchanges[0]) == exchanges[2:]


def test_a_ring_of_zero_keeps_nothing() -> None:
    ring = TraceRing(0)
    ring.add(_exchange(1))
    assert len(ring) == 0 and ring.after(None) == []


def test_perf_counter_stamps_read_as_wall_clock_times() -> None:
    import time

    stamp = time.perf_counter()
    assert abs(wall_time(stamp) - time.time()) < 60  # the anchor, not the epoch
    text = iso_time(stamp)
    assert text.endswith("Z") and text[:4] == time.strftime("%Y", time.gmtime()) and len(text) == 24
