"""Move users to their new shard after the shard list changed: ``python -m userstore_svc.reshard``.

Usage::

    python -m userstore_svc.reshard --from host0:50051 --to host0:50051,host1:50051

Every user on a shard listed in ``--from`` whose owner under ``--to`` (the same rendezvous hash the
scheduler and gateway use) is a different address is moved there: frozen on its old shard,
streamed, checked and installed on the new one, then deleted from the old one. A user is paused
only while their own file moves; a failed move is aborted and leaves the user where they were.
Run it right after rolling the new ``USERSTORE_ADDRS`` out (see docs/scaling.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from torbox.automation.v1 import userstore_service_pb2 as pb
from torbox.automation.v1 import userstore_service_pb2_grpc as pb_grpc

from common import grpc_client
from common.routing import owner_index

if TYPE_CHECKING:
    from torbox.automation.v1.userstore_service_pb2_grpc import UserstoreServiceAsyncStub as Stub

MOVABLE = (pb.USER_STATUS_ACTIVE, pb.USER_STATUS_AUTH_FAILED, pb.USER_STATUS_MOVING)
TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class Move:
    """One user to move."""

    auth_id: str
    source: str
    target: str


@dataclass(slots=True)
class Report:
    """What a reshard did."""

    planned: int = 0
    moved: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)
    bytes_moved: int = 0

    def summary(self) -> dict[str, object]:
        """Counts and per-user pause figures (seconds)."""
        pauses = sorted(self.pauses)
        return {
            "planned": self.planned,
            "moved": self.moved,
            "failed": len(self.failed),
            "bytes_moved": self.bytes_moved,
            "pause_p50": pauses[len(pauses) // 2] if pauses else None,
            "pause_max": pauses[-1] if pauses else None,
        }


def plan_moves(users_by_shard: dict[str, list[pb.User]], targets: Sequence[str]) -> list[Move]:
    """The moves that make every user live on its owner under `targets`."""
    moves = []
    for source, users in users_by_shard.items():
        for user in users:
            if user.status not in MOVABLE:
                continue
            target = targets[owner_index(user.auth_id, len(targets))]
            if target != source:
                moves.append(Move(user.auth_id, source, target))
    return moves


async def list_users(stub: Stub) -> list[pb.User]:
    """Every row of a shard's registry (latest state of each user)."""
    rows: dict[str, pb.User] = {}
    after = 0
    while True:
        response = await stub.ListUsers(
            pb.ListUsersRequest(after_seq=after, limit=5000), timeout=60
        )
        for user in response.users:
            rows[user.auth_id] = user
        after = response.latest_seq
        if not response.more:
            return list(rows.values())


async def move_one(source: Stub, target: Stub, auth_id: str) -> tuple[float, int]:
    """Freeze, stream, install, delete: returns (seconds paused, bytes moved)."""
    started = time.monotonic()
    frozen = await source.BeginMove(pb.BeginMoveRequest(auth_id=auth_id), timeout=TIMEOUT)
    try:

        async def parts() -> AsyncIterator[pb.ImportUserRequest]:
            yield pb.ImportUserRequest(
                header=pb.ImportHeader(user=frozen.user, size=frozen.size, sha256=frozen.sha256)
            )
            async for piece in source.ExportUser(
                pb.ExportUserRequest(auth_id=auth_id), timeout=TIMEOUT
            ):
                yield pb.ImportUserRequest(chunk=piece.chunk)

        await target.ImportUser(parts(), timeout=TIMEOUT)
    except BaseException:
        # If even the abort fails the source stays frozen; rerunning the tool resumes the move.
        with contextlib.suppress(grpc.aio.AioRpcError):
            await source.AbortMove(pb.AbortMoveRequest(auth_id=auth_id), timeout=60)
        raise
    await source.FinishMove(pb.FinishMoveRequest(auth_id=auth_id), timeout=60)
    return time.monotonic() - started, frozen.size


async def reshard(
    sources: Sequence[str], targets: Sequence[str], *, concurrency: int = 4, dry_run: bool = False
) -> Report:
    """Move every misplaced user; returns what happened."""
    channels = {a: grpc_client.channel(a) for a in dict.fromkeys([*sources, *targets])}
    stubs: dict[str, Stub] = {a: pb_grpc.UserstoreServiceStub(c) for a, c in channels.items()}
    report = Report()
    try:
        users = {a: await list_users(stubs[a]) for a in sources}
        moves = plan_moves(users, targets)
        report.planned = len(moves)
        if dry_run:
            return report
        gate = asyncio.Semaphore(concurrency)

        async def run(move: Move) -> None:
            async with gate:
                try:
                    seconds, size = await move_one(
                        stubs[move.source], stubs[move.target], move.auth_id
                    )
                except grpc.aio.AioRpcError as error:
                    report.failed.append((move.auth_id, f"{error.code().name}: {error.details()}"))
                    return
                report.moved += 1
                report.pauses.append(seconds)
                report.bytes_moved += size

        await asyncio.gather(*(run(m) for m in moves))
    finally:
        for channel in channels.values():
            await channel.close()
    return report


def _addresses(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints a JSON summary and exits non-zero if a move failed."""
    parser = argparse.ArgumentParser(
        prog="python -m userstore_svc.reshard", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--from", dest="sources", required=True, help="the old USERSTORE_ADDRS")
    parser.add_argument("--to", dest="targets", required=True, help="the new USERSTORE_ADDRS")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--dry-run", action="store_true", help="only count the users to move")
    args = parser.parse_args(argv)
    sources, targets = _addresses(args.sources), _addresses(args.targets)
    if not sources or not targets or args.concurrency < 1:
        parser.error("--from and --to need at least one host:port; --concurrency at least 1")
    report = asyncio.run(
        reshard(sources, targets, concurrency=args.concurrency, dry_run=args.dry_run)
    )
    print(json.dumps(report.summary()))  # noqa: T201 - the tool's output
    for auth_id, reason in report.failed:
        print(f"failed {auth_id[:12]}: {reason}", file=sys.stderr)  # noqa: T201
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
