"""The ingest stream to a real userstore process: answers by poll id, restarts, resent outcomes."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import orjson
import pytest
from torbox.automation.v1 import torrent_pb2 as tpb
from torbox.automation.v1 import userstore_service_pb2 as upb
from torbox.automation.v1 import userstore_service_pb2_grpc as upb_grpc

from common import grpc_client, torrent_rows
from common.errors import InvalidArgument, Unavailable
from scheduler_svc.streams import IngestStream
from tests.e2e.stack import Stack, eventually
from tests.test_torrent_rows import rows_of

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stream(userstore: Stack) -> AsyncIterator[IngestStream]:
    """A connected ingest stream to the shard."""
    ingest = IngestStream(userstore.userstore_addrs[0], timeout=10)
    ingest.start()
    assert await ingest.wait_connected(20)
    try:
        yield ingest
    finally:
        await ingest.close()


async def _user(stream: IngestStream) -> str:
    auth_id = secrets.token_hex(32)
    await stream.stub.RegisterUser(
        upb.RegisterUserRequest(auth_id=auth_id, key_ciphertext=secrets.token_bytes(48)),
        timeout=10,
        metadata=grpc_client.metadata(),
    )
    return auth_id


def _snapshot(auth_id: str, observed_at: float) -> upb.Snapshot:
    return upb.Snapshot(
        poll_id=uuid.uuid4().hex,
        auth_id=auth_id,
        observed_at=observed_at,
        complete=True,
        torrents=[tpb.Torrent(id=7, hash="ab" * 20, name="one", download_state="seeding")],
        poll_interval_seconds=1,
    )


async def test_snapshots_get_their_own_plans_and_a_replay_changes_nothing(
    stream: IngestStream,
) -> None:
    """Each snapshot is answered under its poll id; sending one again is not applied twice."""
    users = [await _user(stream) for _ in range(3)]
    now = time.time()
    snapshots = [_snapshot(u, now) for u in users]
    plans = [await stream.send_snapshot(s) for s in snapshots]
    assert [p.poll_id for p in plans] == [s.poll_id for s in snapshots]
    assert all(p.applied for p in plans)
    again = await stream.send_snapshot(snapshots[0])
    assert not again.applied


def _rows_snapshot(auth_id: str, observed_at: float, torrents: list[tpb.Torrent]) -> upb.Snapshot:
    rows = torrent_rows.encode(rows_of(torrents))
    return upb.Snapshot(
        poll_id=uuid.uuid4().hex,
        auth_id=auth_id,
        observed_at=observed_at,
        complete=True,
        torrent_rows=upb.TorrentRows(**rows),
        poll_interval_seconds=1,
    )


ITEMS = [
    tpb.Torrent(
        id=7,
        hash="ab" * 20,
        name="one",
        download_state="uploading",
        size=1000,
        active=True,
        seeds=3,
        ratio=1.25,
        progress=1.0,
        upload_speed=2048,
        created_at=1_700_000_000.5,
        updated_at=1_700_000_100.25,
        tracker="udp://tracker.example:1337",
        total_uploaded=1250,
    ),
    tpb.Torrent(id=8, hash="cd" * 20, name="queued one", download_state="queued", queued=True),
    tpb.Torrent(id=9, hash="ef" * 20, name="news", asset_type=tpb.ASSET_TYPE_USENET, size=5),
]


async def test_a_shard_reads_rows_as_it_reads_messages(stream: IngestStream) -> None:
    """The shard says it reads rows; the same items as rows or as messages are stored alike."""
    assert not stream.reads_rows  # nothing said yet: the first poll goes as messages
    by_messages, by_rows = await _user(stream), await _user(stream)
    now = time.time()
    plan = await stream.send_snapshot(
        upb.Snapshot(
            poll_id=uuid.uuid4().hex,
            auth_id=by_messages,
            observed_at=now,
            complete=True,
            torrents=ITEMS,
            poll_interval_seconds=1,
            listed_types=[tpb.ASSET_TYPE_TORRENT, tpb.ASSET_TYPE_USENET],
        )
    )
    assert plan.applied
    assert plan.reads_torrent_rows
    assert stream.reads_rows
    rows = _rows_snapshot(by_rows, now, ITEMS)
    rows.listed_types.extend([tpb.ASSET_TYPE_TORRENT, tpb.ASSET_TYPE_USENET])
    assert (await stream.send_snapshot(rows)).applied
    listed = [await _listed(stream, a) for a in (by_messages, by_rows)]
    assert listed[0] == listed[1]
    assert len(listed[0]) == 3


async def _listed(stream: IngestStream, auth_id: str) -> list[upb.TorrentStatus]:
    reply = await stream.stub.ListTorrents(
        upb.ListTorrentsRequest(
            auth_id=auth_id, asset_types=[tpb.ASSET_TYPE_TORRENT, tpb.ASSET_TYPE_USENET]
        ),
        timeout=10,
        metadata=grpc_client.metadata(),
    )
    return sorted(reply.torrents, key=lambda t: (t.asset_type, t.torrent_id))


async def test_a_bad_row_is_refused_with_its_column_and_stores_nothing(
    stream: IngestStream,
) -> None:
    """INVALID_ARGUMENT naming the column; the user's torrents and last poll stay as they were."""
    auth_id = await _user(stream)
    now = time.time()
    assert (await stream.send_snapshot(_rows_snapshot(auth_id, now, ITEMS[:1]))).applied
    before = await _listed(stream, auth_id)
    bad = _rows_snapshot(auth_id, now + 1, ITEMS[:1])
    values = orjson.loads(bad.torrent_rows.rows)
    values[0][torrent_rows.FIELDS.index("seeds")] = "many"
    bad.torrent_rows.rows = orjson.dumps(values)
    with pytest.raises(InvalidArgument) as raised:
        await stream.send_snapshot(bad)
    assert "torrent_rows.seeds" in raised.value.message
    both = _rows_snapshot(auth_id, now + 2, ITEMS[:1])
    both.torrents.append(ITEMS[0])
    with pytest.raises(InvalidArgument):
        await stream.send_snapshot(both)
    assert await _listed(stream, auth_id) == before
    # Neither counted as the last poll: the next good one, older than both, is applied.
    assert (await stream.send_snapshot(_rows_snapshot(auth_id, now + 0.5, ITEMS[:1]))).applied


async def test_the_stream_reconnects_after_a_userstore_restart_and_resends_outcomes(
    userstore: Stack, stream: IngestStream
) -> None:
    """While the shard is down snapshots fail fast and outcomes wait; once it is back both flow."""
    auth_id = await _user(stream)
    assert (await stream.send_snapshot(_snapshot(auth_id, time.time()))).applied
    outcome = tpb.ActionOutcome(action_id=123456, success=True, completed_at=time.time())
    assert await stream.send_outcomes("p1", auth_id, [outcome])
    assert stream.unacknowledged == 0

    process = userstore.userstores[0]
    port = process.port
    await process.stop()
    await eventually(lambda: _down(stream), timeout=20, what="the stream to notice")
    with pytest.raises(Unavailable):
        await stream.send_snapshot(_snapshot(auth_id, time.time()))
    assert not await stream.send_outcomes("p2", auth_id, [outcome])
    assert stream.unacknowledged == 1

    await userstore.start_userstore(0, port=port)
    assert await stream.wait_connected(30)
    # The shard may be another (older) one now: rows wait until its plans say it reads them.
    assert not stream.reads_rows
    await eventually(
        lambda: _acknowledged(stream), timeout=30, what="the kept outcomes to be acknowledged"
    )
    assert stream.reconnects >= 1
    assert (await stream.send_snapshot(_snapshot(auth_id, time.time()))).applied


async def test_outcomes_the_shard_refuses_for_good_are_not_kept(stream: IngestStream) -> None:
    """Outcomes for an unregistered user are refused once and not resent forever."""
    outcome = tpb.ActionOutcome(action_id=1, success=True, completed_at=time.time())
    assert not await stream.send_outcomes("p", secrets.token_hex(32), [outcome])
    assert stream.unacknowledged == 0


async def _down(stream: IngestStream) -> bool:
    return not stream.connected


async def _acknowledged(stream: IngestStream) -> bool:
    return stream.unacknowledged == 0


class _SlowShard(upb_grpc.UserstoreServiceServicer):
    """A shard that answers every snapshot with a plan except those it was told to hold back."""

    def __init__(self) -> None:
        self.held: list[str] = []

    async def Ingest(
        self, requests: AsyncIterator[upb.IngestRequest], context: object
    ) -> AsyncIterator[upb.IngestResponse]:
        async for request in requests:
            poll_id = request.snapshot.poll_id
            if poll_id.startswith("held-"):
                self.held.append(poll_id)
                continue
            yield upb.IngestResponse(plan=upb.Plan(poll_id=poll_id))


async def test_a_snapshot_not_answered_in_time_fails_and_the_stream_goes_on() -> None:
    """No answer within the timeout: TIMEOUT for that poll, and the next poll is answered."""
    shard = _SlowShard()  # type: ignore[abstract]  # only Ingest is served
    server = grpc.aio.server()
    upb_grpc.add_UserstoreServiceServicer_to_server(shard, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ingest = IngestStream(f"127.0.0.1:{port}", timeout=0.5)
    ingest.start()
    try:
        assert await ingest.wait_connected(20)
        held = upb.Snapshot(poll_id="held-1", auth_id="a" * 64, observed_at=time.time())
        with pytest.raises(Unavailable) as raised:
            await ingest.send_snapshot(held)
        assert raised.value.code == "TIMEOUT"
        assert shard.held == ["held-1"]
        assert ingest.connected
        answered = upb.Snapshot(poll_id="next", auth_id="a" * 64, observed_at=time.time())
        assert (await ingest.send_snapshot(answered)).poll_id == "next"
        # Its plans never say it reads rows (a shard from before them): messages it is.
        assert not ingest.reads_rows
    finally:
        await ingest.close()
        await server.stop(None)


class _RecordingShard(upb_grpc.UserstoreServiceServicer):
    """A shard that keeps every snapshot it gets; its plans say it reads rows only if told to
    (one that never does is a userstore from before rows)."""

    def __init__(self, reads_rows: bool) -> None:
        self.reads_rows = reads_rows
        self.snapshots: list[upb.Snapshot] = []

    async def Ingest(
        self, requests: AsyncIterator[upb.IngestRequest], context: object
    ) -> AsyncIterator[upb.IngestResponse]:
        async for request in requests:
            self.snapshots.append(request.snapshot)
            plan = upb.Plan(poll_id=request.snapshot.poll_id, applied=True)
            plan.reads_torrent_rows = self.reads_rows
            yield upb.IngestResponse(plan=plan)


async def _serve(shard: _RecordingShard, port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    upb_grpc.add_UserstoreServiceServicer_to_server(shard, server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, port


async def test_rows_go_only_to_a_shard_that_said_it_reads_them() -> None:
    """An older shard gets messages on every poll (rows would read as a complete, empty list);
    a newer one gets rows from its first plan on, and messages again after each reconnect."""
    shard = _RecordingShard(reads_rows=False)  # type: ignore[abstract]  # only Ingest is served
    server, port = await _serve(shard)
    ingest = IngestStream(f"127.0.0.1:{port}", timeout=10)
    ingest.start()
    rows = rows_of(ITEMS)

    async def poll() -> upb.Snapshot:
        snapshot = upb.Snapshot(poll_id=uuid.uuid4().hex, **ingest.items(rows))
        await ingest.send_snapshot(snapshot)
        return shard.snapshots[-1]

    try:
        assert await ingest.wait_connected(20)
        for _ in range(3):
            sent = await poll()
            assert not sent.HasField("torrent_rows")
            assert list(sent.torrents) == ITEMS
        assert not ingest.reads_rows

        shard.reads_rows = True
        assert list((await poll()).torrents) == ITEMS  # its first plan that says so
        assert ingest.reads_rows
        sent = await poll()
        assert not sent.torrents
        assert torrent_rows.decode(sent.torrent_rows.fields, sent.torrent_rows.rows) == rows

        await server.stop(None)
        await eventually(lambda: _down(ingest), timeout=20, what="the stream to notice")
        server, _ = await _serve(shard, port)
        assert await ingest.wait_connected(30)
        assert not ingest.reads_rows
        assert list((await poll()).torrents) == ITEMS
    finally:
        await ingest.close()
        await server.stop(None)
