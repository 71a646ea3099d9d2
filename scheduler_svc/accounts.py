"""What the gateway asks of the scheduler: register a key, remove it, run a rule, restore."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from torbox.automation.v1 import uploads_service_pb2 as upb
from torbox.automation.v1 import userstore_service_pb2 as pb

from common import grpc_client
from common.auth import auth_id_for, is_valid_api_key, is_valid_auth_id
from common.errors import (
    AutomationError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    UserNotRegistered,
)
from scheduler_svc.directory import ACTIVE, AUTH_FAILED, Change, Directory, UserEntry
from scheduler_svc.keys import KeyDecryptError, secret_context
from scheduler_svc.polling import Poller
from scheduler_svc.torbox.client import TorBoxClient
from scheduler_svc.torbox.errors import TorBoxAuthError, TorBoxError

if TYPE_CHECKING:
    from torbox.automation.v1.uploads_service_pb2_grpc import (
        UploadsServiceAsyncStub as UploadsStub,
    )

log = logging.getLogger(__name__)
T = TypeVar("T")

# A manual run that has not finished when its answer is due goes on (its actions are recorded and
# appear in the rule's logs); the answer says so instead of failing.
STILL_RUNNING = "still running: the result will appear in the rule's logs"


@dataclass(frozen=True, slots=True)
class Ensured:
    """The answer to ensure-db."""

    auth_id: str
    was_created: bool
    reactivated: bool


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A manual run's result."""

    summary: pb.RunSummary
    success: int
    errors: int
    executed: bool


class Accounts:
    """User-facing operations that need TorBox or a key."""

    def __init__(
        self,
        client: TorBoxClient,
        directory: Directory,
        poller: Poller,
        timeout: float,
        upload_stubs: Sequence[UploadsStub] = (),
    ):
        self.client = client
        # The upload queue of each shard (restores go through it).
        self.upload_stubs = list(upload_stubs)
        self.directory = directory
        self.poller = poller
        self.timeout = timeout
        # Runs and restores that outlived their caller's deadline (kept so they are not dropped).
        self._finishing: set[asyncio.Task[Any]] = set()

    async def _finish(self, work: Coroutine[Any, Any, T], within: float | None) -> T | None:
        """Run `work` to completion whatever the caller does; None if not done `within` seconds.

        Work that changes TorBox or the store is never cut in half by a caller's deadline or
        disconnect: it goes on in the background, and the caller is told it is still running.
        """
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.wait_for(asyncio.shield(task), within)
        except TimeoutError:
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
            return None
        except asyncio.CancelledError:
            if not task.done():
                self._finishing.add(task)
                task.add_done_callback(self._finishing.discard)
            raise

    async def _get_user(self, auth_id: str) -> pb.User | None:
        stub = self.directory.shard_for(auth_id).stub
        try:
            response = await stub.GetUser(
                pb.GetUserRequest(auth_id=auth_id),
                timeout=self.timeout,
                metadata=grpc_client.metadata(),
            )
        except grpc.aio.AioRpcError as error:
            mapped = grpc_client.error_from_rpc(error)
            if isinstance(mapped, NotFound):
                return None
            raise mapped from None
        return response.user

    async def ensure(self, api_key: str, within: float | None = None) -> Ensured:
        """Validate a key (unless it is already known good), store it encrypted, register."""
        if not is_valid_api_key(api_key):
            raise InvalidArgument("Invalid API key format", code="INVALID_API_KEY", field="apiKey")
        auth_id = auth_id_for(api_key)
        known = await self._get_user(auth_id)
        ciphertext: bytes | None = None
        local = self.directory.users.get(auth_id)
        # A key this replica stopped after auth failures is validated again even when the
        # registry did not hear of the stop (the userstore was unreachable at the time).
        stopped_here = local is not None and local.status == AUTH_FAILED
        if (
            known is not None
            and known.status == ACTIVE
            and known.key_ciphertext
            and not stopped_here
        ):
            try:
                if self.directory.keybox.decrypt(known.key_ciphertext, auth_id) == api_key:
                    ciphertext = known.key_ciphertext
            except KeyDecryptError:
                ciphertext = None
        if ciphertext is None:
            try:
                # Only this step may be slow; cut short here, nothing has been stored yet.
                await asyncio.wait_for(self.client.user_me(auth_id, api_key), within)
            except TimeoutError:
                raise Unavailable(
                    "TorBox did not answer in time to validate the key; nothing was stored",
                    code="TORBOX_TIMEOUT",
                ) from None
            except TorBoxAuthError:
                raise InvalidArgument(
                    "Invalid API key: TorBox refused it", code="INVALID_API_KEY", field="apiKey"
                ) from None
            except TorBoxError as error:
                raise Unavailable(
                    f"TorBox could not validate the key right now ({error.code})",
                    code="TORBOX_UNAVAILABLE",
                ) from None
            ciphertext = self.directory.keybox.encrypt(api_key, auth_id)
        stub = self.directory.shard_for(auth_id).stub
        try:
            response = await stub.RegisterUser(
                pb.RegisterUserRequest(auth_id=auth_id, key_ciphertext=ciphertext),
                timeout=self.timeout,
                metadata=grpc_client.metadata(),
            )
        except grpc.aio.AioRpcError as error:
            raise grpc_client.error_from_rpc(error) from None
        if self.directory.owns(auth_id):
            user = pb.User(auth_id=auth_id, status=ACTIVE, key_ciphertext=ciphertext)
            if known is not None:
                user.has_enabled_rules = known.has_enabled_rules
            change = self.directory.apply(user, self.directory.shard_index(auth_id))
            entry = self.directory.users.get(auth_id)
            if entry is not None:
                entry.api_key = api_key
                entry.health.reset_auth()
            if change is not None:
                self.poller.apply_changes([change], startup=False)
        return Ensured(
            auth_id,
            response.was_created,
            response.reactivated
            or stopped_here
            or (known is not None and known.status == AUTH_FAILED),
        )

    async def remove(self, auth_id: str) -> bool:
        """Stop polling and delete the user's registry row and database."""
        _check(auth_id)
        stub = self.directory.shard_for(auth_id).stub
        try:
            response = await stub.RemoveUser(
                pb.RemoveUserRequest(auth_id=auth_id),
                timeout=self.timeout,
                metadata=grpc_client.metadata(),
            )
        except grpc.aio.AioRpcError as error:
            raise grpc_client.error_from_rpc(error) from None
        entry = self.directory.users.pop(auth_id, None)
        if entry is not None:
            self.poller.apply_changes([Change("removed", entry)], startup=False)
        return response.removed

    async def _entry(self, auth_id: str) -> UserEntry:
        _check(auth_id)
        entry = self.directory.users.get(auth_id)
        if entry is not None and entry.status == ACTIVE:
            return entry
        user = await self._get_user(auth_id)
        if user is None or user.status == pb.USER_STATUS_REMOVED:
            raise UserNotRegistered()
        if user.status != ACTIVE:
            raise FailedPrecondition(
                "API key inactive: TorBox refused it; open the app to validate it again",
                code="API_KEY_INACTIVE",
            )
        return entry if entry is not None else self.directory.transient(user)

    async def run_rule(self, auth_id: str, rule_id: int, within: float | None = None) -> RunOutcome:
        """Poll now with fresh data, evaluate one rule, execute (or preview) its actions.

        Answers within `within` seconds: a run not finished by then goes on, and says so.
        """
        if rule_id <= 0:
            raise InvalidArgument("rule id must be a positive integer", field="id")
        entry = await self._entry(auth_id)
        result = await self._finish(self.poller.poll(entry, run_rule_id=rule_id), within)
        if result is None:
            return RunOutcome(pb.RunSummary(rule_id=rule_id, reason=STILL_RUNNING), 0, 0, False)
        if result.plan is None:
            if result.error == UserNotRegistered.default_code:
                # The key was removed while the run fetched: the user is gone, not the shard.
                raise UserNotRegistered()
            raise Unavailable(
                f"could not poll TorBox for fresh data ({result.error})",
                code=result.error or "UNAVAILABLE",
            )
        if not result.plan.HasField("run_summary"):
            raise Unavailable("the snapshot was not applied; try again", code="NOT_APPLIED")
        summary = result.plan.run_summary
        if summary.reason == "rule not found":
            raise NotFound(f"Rule {rule_id} not found", code="RULE_NOT_FOUND", field="id")
        success = sum(1 for o in result.outcomes if o.success)
        return RunOutcome(summary, success, len(result.outcomes) - success, bool(result.outcomes))

    def seal_secret(self, auth_id: str, secret: str) -> bytes:
        """An upload's password sealed with the key only this service holds."""
        _check(auth_id)
        if not secret or len(secret) > 4096:
            raise InvalidArgument("secret must be 1 to 4096 characters", field="secret")
        return self.directory.keybox.encrypt(secret, secret_context(auth_id))

    async def restore(self, auth_id: str, archive_id: int) -> dict[str, object]:
        """Queue an archived torrent again through the upload queue (as the gateway does).

        The queue's worker sends it to TorBox at the pace TorBox allows; the archive row goes
        in the same transaction as the upload row is written.
        """
        _check(auth_id)
        stub = self.upload_stubs[self.directory.shard_index(auth_id)]
        try:
            response = await stub.RestoreArchivedUpload(
                upb.RestoreArchivedUploadRequest(auth_id=auth_id, archive_id=archive_id),
                timeout=self.timeout,
                metadata=grpc_client.metadata(),
            )
        except grpc.aio.AioRpcError as error:
            raise grpc_client.error_from_rpc(error) from None
        url = response.upload.url if response.upload.HasField("url") else ""
        return {"hash": url.partition("btih:")[2][:40]}


def _check(auth_id: str) -> None:
    if not is_valid_auth_id(auth_id):
        raise InvalidArgument("auth_id must be 64 lowercase hex digits", field="auth_id")


__all__ = ["Accounts", "AutomationError", "Ensured", "RunOutcome"]
