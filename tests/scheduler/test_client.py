"""The TorBox client against the simulated TorBox over real HTTP: paging, quirks, errors, limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict

from scheduler_svc.torbox.errors import (
    TorBoxApiError,
    TorBoxAuthError,
    TorBoxRateLimited,
    TorBoxUnavailable,
)
from scheduler_svc.torbox.parse import parse_date
from tests.scheduler.conftest import ClientFactory, SimServer

MYLIST = "torrents/mylist"


async def test_2500_torrents_come_back_whole_across_pages(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """Three mylist pages (1000, 1000, 500) and the queued items make one complete list."""
    account = await sim.account(mix={"seeding": 1500, "downloading": 1000, "queued": 3})
    key = account["api_key"]
    torrents = await make_client().list_all("k", key)

    listed = {t.id for t in torrents if not t.queued}
    queued = {t.id for t in torrents if t.queued}
    assert listed == set(account["torrent_ids"])
    assert len(listed) == 2500
    assert queued == set(account["queued_ids"])
    assert all(t.download_state == "queued" for t in torrents if t.queued)
    pages = [h.query for h in sim.of(key, MYLIST)]
    assert [p["offset"] for p in pages] == ["0", "1000", "2000"]
    assert all(p["limit"] == "1000" and p["bypass_cache"] == "true" for p in pages)
    # The queue's query keeps its type beside the paging (the query is written as text).
    assert [h.query for h in sim.of(key, "queued/getqueued")] == [
        {"type": "torrent", "bypass_cache": "true", "limit": "1000", "offset": "0"}
    ]


async def test_a_download_list_pages_with_its_type(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """usenet/mylist is paged like mylist, and its queue is asked for with type=usenet."""
    account = await sim.account(mix={"seeding": 2})
    key = account["api_key"]
    assert await make_client().list_downloads("k", key, "usenet") == []
    assert [h.query for h in sim.of(key, "usenet/mylist")] == [
        {"bypass_cache": "true", "limit": "1000", "offset": "0"}
    ]
    assert [h.query for h in sim.of(key, "queued/getqueued")] == [
        {"type": "usenet", "bypass_cache": "true", "limit": "1000", "offset": "0"}
    ]


async def test_a_full_last_page_ends_on_the_empty_list_quirk(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """Exactly 1000 torrents: the next page is TorBox's 404 ITEM_NOT_FOUND, read as the end."""
    account = await sim.account(mix={"seeding": 1000})
    torrents = await make_client().list_all("k", account["api_key"])
    assert len(torrents) == 1000
    assert [h.status for h in sim.of(account["api_key"], MYLIST)] == [200, 404]


async def test_an_empty_account_is_an_empty_list(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """404 with success:true and ITEM_NOT_FOUND (mylist and getqueued) means no torrents."""
    account = await sim.account()
    assert await make_client().list_all("k", account["api_key"]) == []


@pytest.mark.parametrize("as_list", [False, True])
async def test_one_torrent_by_id_whether_data_is_an_object_or_a_list(
    sim: SimServer, make_client: ClientFactory, as_list: bool
) -> None:
    """mylist?id= answers an object or (quirk) a list; an unknown id is None, not an error."""
    account = await sim.account(mix={"seeding": 2}, knobs={"id_returns_list": as_list})
    key = account["api_key"]
    client = make_client()
    wanted = account["torrent_ids"][1]
    found = await client.torrent("k", key, wanted)
    assert found is not None
    assert found.id == wanted
    assert await client.torrent("k", key, 999_999_999) is None


@pytest.mark.parametrize("active_as", ["bool", "int", "string"])
@pytest.mark.parametrize("legacy_dates", [False, True])
async def test_active_and_dates_survive_every_encoding(
    sim: SimServer, make_client: ClientFactory, active_as: str, legacy_dates: bool
) -> None:
    """`active` as bool/1/"true" and dates with Z or +00:00 and microseconds parse the same."""
    account = await sim.account(
        mix={"seeding": 2, "finished_inactive": 2},
        knobs={"active_as": active_as, "legacy_dates": legacy_dates},
    )
    key = account["api_key"]
    torrents = {t.id: t for t in await make_client().list_all("k", key)}
    raw = {t["id"]: t for t in (await sim.state(key))["torrents"]}
    assert set(torrents) == set(raw)
    for torrent_id, item in raw.items():
        parsed = torrents[torrent_id]
        assert parsed.active is (item["active"] in (True, 1, "true"))
        assert parsed.HasField("created_at")
        assert parsed.created_at == parse_date(item["created_at"])
        assert parsed.created_at > datetime(2000, 1, 1, tzinfo=UTC).timestamp()
    assert {t.active for t in torrents.values()} == {True, False}


def test_both_date_formats_give_the_same_instant() -> None:
    """TorBox's current `...Z` and its 2023 `+00:00` with microseconds are the same UTC time."""
    assert parse_date("2024-10-21T20:47:03Z") == parse_date("2024-10-21T20:47:03.000000+00:00")
    assert parse_date("2023-12-22T22:12:34.78989+00:00") == pytest.approx(
        datetime(2023, 12, 22, 22, 12, 34, 789890, tzinfo=UTC).timestamp()
    )
    assert parse_date("not a date") is None
    assert parse_date(None) is None


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [
        ("bad_gateway_html", TorBoxUnavailable, "HTTP_502"),
        ("unavailable_503", TorBoxUnavailable, "HTTP_503"),
        ("malformed_json", TorBoxUnavailable, "MALFORMED_RESPONSE"),
        ("timeout", TorBoxUnavailable, "TIMEOUT"),
        ("http_500", TorBoxApiError, "UNKNOWN_ERROR"),
        ("auth_error_500", TorBoxApiError, "AUTH_ERROR"),
    ],
)
async def test_retryable_failures_are_retried_then_raised(
    sim: SimServer, make_client: ClientFactory, kind: str, error: type[Exception], code: str
) -> None:
    """Outages, HTML pages, garbage JSON, timeouts and *_ERROR codes: retried, then one error."""
    account = await sim.account(mix={"seeding": 3})
    key = account["api_key"]
    await sim.fault(key, kind, endpoint="mylist", count=3, delay=3)
    with pytest.raises(error) as raised:
        await make_client(retries=2).list_all("k", key)
    assert raised.value.code == code  # type: ignore[attr-defined]
    assert raised.value.retryable  # type: ignore[attr-defined]
    # One attempt and two retries, and the list was never returned in part.
    assert sim.received[(key, MYLIST)] == 3


async def test_a_retry_that_succeeds_returns_the_whole_list(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """A single 502 page is retried and the poll still gets every torrent."""
    account = await sim.account(mix={"seeding": 4})
    key = account["api_key"]
    await sim.fault(key, "bad_gateway_html", endpoint="mylist", count=1)
    torrents = await make_client(retries=2).list_all("k", key)
    assert {t.id for t in torrents} == set(account["torrent_ids"])


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [
        ("business_500", TorBoxApiError, "ACTIVE_LIMIT"),
        ("revoked", TorBoxAuthError, "BAD_TOKEN"),
    ],
)
async def test_client_faults_are_not_retried(
    sim: SimServer, make_client: ClientFactory, kind: str, error: type[Exception], code: str
) -> None:
    """A business error sent as HTTP 500, or a refused key, is raised after one request."""
    account = await sim.account(mix={"seeding": 1})
    key = account["api_key"]
    await sim.fault(key, kind, endpoint="control", count=5)
    with pytest.raises(error) as raised:
        await make_client(retries=2).control_torrent(
            "k", key, account["torrent_ids"][0], "reannounce"
        )
    assert raised.value.code == code  # type: ignore[attr-defined]
    assert not raised.value.retryable  # type: ignore[attr-defined]
    assert len(sim.of(key, "torrents/controltorrent")) == 1


async def test_a_422_without_envelope_is_a_validation_error(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """FastAPI's bare 422 body becomes a non-retryable VALIDATION_ERROR."""
    account = await sim.account(mix={"seeding": 1})
    key = account["api_key"]
    client = make_client()
    with pytest.raises(TorBoxApiError) as raised:
        await client._call(
            "POST",
            "torrents/controltorrent",
            "k",
            key,
            endpoint="control",
            json_body={"torrent_id": "abc", "operation": "reannounce"},
        )
    assert raised.value.code == "VALIDATION_ERROR"
    assert raised.value.status == 422
    assert not raised.value.retryable
    assert len(sim.of(key, "torrents/controltorrent")) == 1


async def test_a_deleted_torrent_is_item_not_found(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """Deleting a torrent twice: the second answer is an error code the executor can read."""
    account = await sim.account(mix={"seeding": 1})
    key = account["api_key"]
    client = make_client()
    torrent_id = account["torrent_ids"][0]
    await client.control_torrent("k", key, torrent_id, "delete")
    with pytest.raises(TorBoxApiError) as raised:
        await client.control_torrent("k", key, torrent_id, "delete")
    assert not raised.value.retryable


async def test_a_429_with_retry_after_is_honoured_to_the_second(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """After a 429 with retry-after: 2, nothing goes out with that key for two seconds."""
    account = await sim.account(mix={"seeding": 2})
    key = account["api_key"]
    # The fallback is far longer than the wait allowed, so only retry-after lets the call through.
    client = make_client(rate_limit_fallback_seconds=600.0, max_token_wait_seconds=30.0)
    await sim.fault(key, "rate_limit_429", endpoint="mylist", retry_after=2)
    before = time.time()
    with pytest.raises(TorBoxRateLimited) as raised:
        await client.list_all("k", key)
    assert 2.0 <= raised.value.retry_at - before <= 2.0 + (time.time() - before)
    limited = sim.of(key)[-1]
    assert limited.status == 429

    # Another endpoint and then the list: both wait for the block to end, then go through.
    await client.user_me("k", key)
    torrents = await client.list_all("k", key)
    assert {t.id for t in torrents} == set(account["torrent_ids"])
    after = [h for h in sim.of(key) if h.started > limited.started]
    assert after, "nothing was sent after the block"
    assert min(h.started for h in after) >= raised.value.retry_at
    assert min(h.started for h in after) >= limited.ended + 2.0


async def test_nothing_is_sent_while_a_key_is_blocked(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """A call that may not wait out the 429 block fails at once without reaching TorBox."""
    account = await sim.account(mix={"seeding": 1})
    key = account["api_key"]
    client = make_client(max_token_wait_seconds=0.2)
    await sim.fault(key, "rate_limit_429", endpoint="mylist", retry_after=30)
    with pytest.raises(TorBoxRateLimited):
        await client.list_all("k", key)
    sent = len(sim.of(key))
    with pytest.raises(TorBoxRateLimited) as raised:
        await client.control_torrent("k", key, account["torrent_ids"][0], "reannounce")
    assert raised.value.retry_at >= time.time() + 25
    assert len(sim.of(key)) == sent
    # Another key is not affected.
    other = await sim.account(mix={"seeding": 1})
    assert len(await client.list_all("other", other["api_key"])) == 1


async def test_the_per_key_bucket_stops_a_burst_before_torbox_does(
    sim: SimServer, make_client: ClientFactory
) -> None:
    """At 60/min the burst is 6: a seventh immediate call is refused locally, never sent."""
    account = await sim.account()
    key = account["api_key"]
    client = make_client(per_key_per_minute=60.0, max_token_wait_seconds=0.0)
    results = []
    for _ in range(8):
        try:
            await client.user_me("k", key)
            results.append("sent")
        except TorBoxRateLimited:
            results.append("limited")
    assert results == ["sent"] * 6 + ["limited"] * 2
    assert len(sim.of(key, "user/me")) == 6
    # Other endpoints of the same key have their own bucket.
    await client.list_all("k", key)


def test_retry_at_reads_retry_after_then_the_reset_header_then_falls_back(
    make_client: ClientFactory,
) -> None:
    """retry-after (seconds or a date), else x-ratelimit-reset (epoch or delta), else fallback."""
    client = make_client(rate_limit_fallback_seconds=60.0)
    now = time.time()

    def retry_at(**headers: str) -> float:
        return client._retry_at(CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}))

    assert retry_at(retry_after="7") == pytest.approx(now + 7, abs=1)
    assert retry_at(retry_after="Wed, 21 Oct 2037 07:28:00 GMT") == pytest.approx(
        datetime(2037, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    )
    assert retry_at(x_ratelimit_reset="1785453098.556586") == 1785453098.556586
    assert retry_at(x_ratelimit_reset="12.5") == pytest.approx(now + 12.5, abs=1)
    assert retry_at(retry_after="3", x_ratelimit_reset="1785453098.5") == pytest.approx(
        now + 3, abs=1
    )
    assert retry_at(x_ratelimit_reset="soon") == pytest.approx(now + 60, abs=1)
    assert retry_at() == pytest.approx(now + 60, abs=1)


async def test_user_me_validates_a_key(sim: SimServer, make_client: ClientFactory) -> None:
    """A known key returns the account; an unknown one is an authentication error."""
    account = await sim.account()
    client = make_client()
    me = await client.user_me("k", account["api_key"])
    assert isinstance(me.get("auth_id"), str)
    with pytest.raises(TorBoxAuthError):
        await client.user_me("x", "no-such-key-0123456789abcdef")


async def test_create_and_export_magnet(sim: SimServer, make_client: ClientFactory) -> None:
    """createtorrent from a magnet adds a torrent whose magnet exportdata gives back."""
    account = await sim.account()
    key = account["api_key"]
    client = make_client()
    info_hash = "0123456789abcdef0123456789abcdef01234567"
    created = await client.create_torrent(
        "k", key, f"magnet:?xt=urn:btih:{info_hash}&dn=restored", "restored"
    )
    torrent_id = created.get("torrent_id") or created.get("queued_id")
    assert isinstance(torrent_id, int)
    if created.get("torrent_id"):
        magnet = await client.export_magnet("k", key, torrent_id)
        assert info_hash in magnet.lower()
