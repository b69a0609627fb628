"""Header fields read from the wire and response heads written to it (edgesim.wire)."""

from __future__ import annotations

from edgesim import wire
from edgesim.models import Headers


def test_fields_decode_byte_for_byte_and_render_back_the_same() -> None:
    raw = ((b"Host", b"example.test"), (b"X-Name", b"caf\xe9 \x80\xff"), (b"x-empty", b""))
    fields = wire.decode_fields(raw)
    assert fields == [("Host", "example.test"), ("X-Name", "caf\xe9 \x80\xff"), ("x-empty", "")]
    assert wire.render_headers(Headers(fields)) == b"".join(
        name + b": " + value + b"\r\n" for name, value in raw
    )


def test_a_repeated_field_is_the_same_decoded_pair() -> None:
    first = wire.decode_fields([(b"Accept", b"*/*"), (b"Accept", b"text/html")])
    fresh = (bytes(bytearray(b"Accept")), bytes(bytearray(b"*/*")))  # equal bytes, new objects
    again = wire.decode_fields([fresh])
    assert again[0] is first[0]
    assert first[1] == ("Accept", "text/html")


def test_fields_that_never_repeat_cannot_grow_the_memo() -> None:
    for n in range(3 * wire._DECODED_LIMIT):
        (pair,) = wire.decode_fields([(b"X-Request", str(n).encode())])
        assert pair == ("X-Request", str(n))
    assert len(wire._DECODED) <= wire._DECODED_LIMIT
