"""The ``viewers:`` section: client IP ranges mapped to a simulated viewer location.

Each rule names where its viewers are, with the keys of
``edgesim.viewer.LOCATION_KEYS``, and either the client IP ranges it covers
(``ip``: an address, a CIDR network, or a list of them), a ``name`` to pick
it per request with ``X-Edgesim-Viewer: NAME``, or both. Rules are tried in
order; the first whose ``ip`` matches wins. See ``edgesim.viewer``.
"""

from __future__ import annotations

import ipaddress
import re

from edgesim.config.node import Node
from edgesim.viewer import (
    LOCATION_KEYS,
    Network,
    ViewerRule,
    check_consistent,
    check_location,
)

__all__ = ["read_viewers"]

_RULE_KEYS = ("name", "ip", *LOCATION_KEYS)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def read_viewers(node: Node | None) -> tuple[ViewerRule, ...]:
    """The ``viewers:`` list, in order; rule names must be unique."""
    if node is None or node.value is None:
        return ()
    rules: list[ViewerRule] = []
    names: dict[str, str] = {}
    for item in node.sequence():
        rule = _rule(item)
        if rule.name is not None:
            if rule.name in names:
                where = item.mapping()["name"]
                also = names[rule.name]
                raise where.error(f"duplicate viewer name {rule.name!r} (also at {also})")
            names[rule.name] = item.path
        rules.append(rule)
    return tuple(rules)


def _rule(node: Node) -> ViewerRule:
    entries = node.mapping(_RULE_KEYS, kind="a viewer")
    name = None
    if "name" in entries:
        name = entries["name"].string()
        if not _NAME.fullmatch(name):
            raise entries["name"].error(
                "a viewer name is 1 to 64 letters, digits, hyphens or underscores"
            )
    networks = _networks(entries["ip"]) if "ip" in entries else ()
    if name is None and not networks:
        raise node.error("a viewer needs ip (the client addresses it covers), a name, or both")
    values = {key: entries[key] for key in LOCATION_KEYS if key in entries}
    for key, child in values.items():
        try:
            check_location({key: child.value})
        except ValueError as error:
            raise child.error(str(error).partition(": ")[2]) from None
    location = check_location({key: child.value for key, child in values.items()})
    try:
        check_consistent(location)
    except ValueError as error:
        key, _, why = str(error).partition(": ")
        raise entries[key].error(why) from None
    return ViewerRule(name, networks, location)


def _networks(node: Node) -> tuple[Network, ...]:
    items = node.sequence() if isinstance(node.value, list) else [node]
    if not items:
        raise node.error("expected an address or network, like 203.0.113.0/24")
    networks = []
    for item in items:
        text = item.string()
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as error:
            raise item.error(f"{text!r} is not an IP address or network: {error}") from None
    return tuple(networks)
