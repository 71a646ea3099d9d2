"""Reading magnets and .torrent files for createtorrent."""

from __future__ import annotations

import base64
import hashlib

import pytest

from simulator.sources import BadTorrent, read_magnet, read_torrent_file

HEX = "3f9a1c0d2b7e4a5f8c6d1e0b9a7c5d3e1f2a4b6c"


def bencoded_torrent(name: bytes) -> tuple[bytes, str]:
    """A tiny valid .torrent and its expected info-hash."""
    info = (
        b"d6:lengthi1024e4:name"
        + str(len(name)).encode()
        + b":"
        + name
        + b"12:piece lengthi16384ee"
    )
    data = b"d8:announce14:http://x/annou4:info" + info + b"e"
    return data, hashlib.sha1(info).hexdigest()


def test_hex_magnet_with_name() -> None:
    """A hex btih magnet yields the lowercase hash and the decoded display name."""
    added = read_magnet(f"magnet:?xt=urn:btih:{HEX.upper()}&dn=Big%20Buck&tr=udp://t")
    assert added == (HEX, "Big Buck")


def test_base32_magnet() -> None:
    """A base32 btih is converted to hex."""
    b32 = base64.b32encode(bytes.fromhex(HEX)).decode()
    assert read_magnet(f"magnet:?xt=urn:btih:{b32}").info_hash == HEX


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com",
        "magnet:?dn=x",
        "magnet:?xt=urn:btih:1234",
        "magnet:?xt=urn:sha1:" + HEX,
    ],
)
def test_bad_magnets_are_rejected(uri: str) -> None:
    """Anything without a usable v1 info-hash is a bad torrent."""
    with pytest.raises(BadTorrent):
        read_magnet(uri)


def test_torrent_file_hash_and_name() -> None:
    """The info-hash is the SHA-1 of the raw info dictionary; the name comes from it."""
    data, expected = bencoded_torrent(b"Sintel")
    assert read_torrent_file(data) == (expected, "Sintel")


@pytest.mark.parametrize("data", [b"", b"garbage", b"d4:infoi1ee", b"d4:info", b"l4:spame"])
def test_broken_torrent_files_are_rejected(data: bytes) -> None:
    """Truncated, non-dictionary or info-less files are bad torrents."""
    with pytest.raises(BadTorrent):
        read_torrent_file(data)
