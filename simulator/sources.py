"""Reads what createtorrent receives, a magnet link or a .torrent file, down to hash and name."""

from __future__ import annotations

import base64
import binascii
import hashlib
import string
from typing import NamedTuple
from urllib.parse import parse_qs

_HEX = frozenset(string.hexdigits)


class BadTorrent(ValueError):
    """The magnet link or .torrent file is not usable (TorBox's BOZO_TORRENT)."""


class Added(NamedTuple):
    """What createtorrent needs from its input."""

    info_hash: str
    name: str | None


def read_magnet(uri: str) -> Added:
    """The BitTorrent v1 hash (hex or base32) and display name of a magnet URI."""
    if not uri.startswith("magnet:?"):
        raise BadTorrent("not a magnet URI")
    params = parse_qs(uri[len("magnet:?") :])
    for topic in params.get("xt", []):
        if not topic.lower().startswith("urn:btih:"):
            continue
        value = topic[len("urn:btih:") :]
        if len(value) == 40 and set(value) <= _HEX:
            return Added(value.lower(), _first(params.get("dn")))
        if len(value) == 32:
            try:
                return Added(base64.b32decode(value.upper()).hex(), _first(params.get("dn")))
            except binascii.Error:
                break
    raise BadTorrent("the magnet has no valid urn:btih info-hash")


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def read_torrent_file(data: bytes) -> Added:
    """Parse a .torrent file: the info-hash is the SHA-1 of the raw bencoded `info` value."""
    try:
        top, end = _decode(data, 0)
    except (IndexError, ValueError) as exc:
        raise BadTorrent(str(exc) or "truncated bencode") from exc
    if end != len(data) or not isinstance(top, dict):
        raise BadTorrent("a .torrent file is one bencoded dictionary")
    span = top.get(b"info")
    if not isinstance(span, _Span):
        raise BadTorrent("the torrent has no info dictionary")
    info_bytes = data[span.start : span.end]
    name = span.value.get(b"name")
    text = name.decode("utf-8", "replace") if isinstance(name, bytes) else None
    # The SHA-1 info-hash is what BitTorrent v1 defines; it is an identifier, not a security check.
    info_hash = hashlib.sha1(info_bytes, usedforsecurity=False).hexdigest()
    return Added(info_hash, text)


class _Span(NamedTuple):
    """A decoded dictionary that remembers where it sat in the input (for the info-hash)."""

    value: dict[bytes, object]
    start: int
    end: int


def _decode(data: bytes, pos: int) -> tuple[object, int]:
    """Decode one value at `pos`; dictionaries nested in dictionaries come back as spans."""
    lead = data[pos : pos + 1]
    if lead == b"i":
        end = data.index(b"e", pos)
        return int(data[pos + 1 : end]), end + 1
    if lead == b"l":
        items: list[object] = []
        pos += 1
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        entries: dict[bytes, object] = {}
        pos += 1
        while data[pos : pos + 1] != b"e":
            key, pos = _decode(data, pos)
            if not isinstance(key, bytes):
                raise ValueError("dictionary keys must be strings")
            value, after = _decode(data, pos)
            entries[key] = _Span(value, pos, after) if isinstance(value, dict) else value
            pos = after
        return entries, pos + 1
    if lead.isdigit():
        colon = data.index(b":", pos)
        length = int(data[pos:colon])
        end = colon + 1 + length
        if end > len(data):
            raise ValueError("string runs past the end")
        return data[colon + 1 : end], end
    raise ValueError(f"unexpected byte at {pos}")
