"""Rendezvous (highest random weight) hashing: the userstore shard and scheduler replica of a user.

The scheduler and the gateway both route with :func:`owner_index`, so a user's snapshots and REST
calls reach the same userstore shard. Nodes are named by position (``node-0`` ... ``node-N-1``), not
by address, so renaming a host moves nobody; appending a node moves only about 1/(N+1) of the users.
The order of ``USERSTORE_ADDRS`` therefore matters: add shards at the end.
"""

from __future__ import annotations

import hashlib


def _weight(index: int, key: str) -> int:
    digest = hashlib.blake2b(f"node-{index}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_index(key: str, count: int) -> int:
    """The index (0..count-1) of the node that owns `key` among `count` nodes."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if count == 1:
        return 0
    return max(range(count), key=lambda index: _weight(index, key))
