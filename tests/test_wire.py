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


def test_a_request_block_decodes_once_with_its_size_on_the_wire() -> None:
    raw = ((b"Host", b"example.test"), (b"Accept", b"*/*"), (b"X-Name", b"caf\xe9"))
    headers, size = wire.decode_block(raw)
    assert headers.fields == (("Host", "example.test"), ("Accept", "*/*"), ("X-Name", "caf\xe9"))
    assert headers.get("x-name") == "caf\xe9"
    assert size == len(b"".join(name + b": " + value + b"\r\n" for name, value in raw))
    fresh = tuple((bytes(bytearray(n)), bytes(bytearray(v))) for n, v in raw)
    assert wire.decode_block(fresh)[0] is headers  # equal bytes, new objects: one decoding
    assert wire.decode_block(raw[:2])[0].fields == headers.fields[:2]


def test_request_blocks_that_never_repeat_or_are_large_cannot_grow_the_memo() -> None:
    for n in range(3 * wire._BLOCKS_LIMIT):
        headers, _ = wire.decode_block(((b"X-Request", str(n).encode()),))
        assert headers.fields == (("X-Request", str(n)),)
    assert len(wire._BLOCKS) <= wire._BLOCKS_LIMIT
    big = ((b"X-Big", b"a" * wire._BLOCK_BYTES),)
    headers, size = wire.decode_block(big)
    assert size == wire._BLOCK_BYTES + len("X-Big") + 4
    assert big not in wire._BLOCKS


def test_a_head_rendered_again_is_the_same_and_each_input_changes_it() -> None:
    headers = Headers([("Content-Type", "text/plain"), ("Content-Length", "5")])
    head = wire.render_head(200, "OK", headers)
    assert head == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
    assert wire.render_head(200, "OK", Headers(list(headers.fields))) == head
    assert wire.render_head(404, "", headers).startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert wire.render_head(200, "Fine", headers).startswith(b"HTTP/1.1 200 Fine\r\n")
    changed = Headers([("Content-Type", "text/html"), ("Content-Length", "5")])
    assert b"text/html" in wire.render_head(200, "OK", changed)
    for n in range(3 * wire._HEADS_LIMIT):
        assert wire.render_head(200, "OK", Headers([("X-N", str(n))])).endswith(f"{n}\r\n".encode())
    assert len(wire._HEADS) <= wire._HEADS_LIMIT
