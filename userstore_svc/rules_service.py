"""Rule CRUD, logs and preview for one user (the gateway's rules endpoints, behind gRPC)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.errors import InvalidArgument, NotFound
from userstore_svc.core.rules.evaluate import compile_rule, explain, trace_dict
from userstore_svc.core.rules.model import PROTECTED_ACTIONS, Rule, iter_conditions
from userstore_svc.core.rules.plan import protected_keys, skip_reason
from userstore_svc.core.rules.presets import PRESETS
from userstore_svc.core.rules.schema import (
    check_user_conditions,
    json_bytes,
    parse_rule,
    parse_rules,
    rule_doc,
)
from userstore_svc.store import rule_tags, user_db
from userstore_svc.store.pool import DatabasePool, Handle
from userstore_svc.store.registry import Registry
from userstore_svc.store.user_db import StoredRule

Clock = Callable[[], float]
# A saved rule's first scheduled evaluation is at most this far away (ten years).
MAX_WAIT_SECONDS = 10 * 365 * 86400.0
_NONE: frozenset[int] = frozenset()
RULES_LAST_ID_KEY = "rules_last_id"  # meta: the highest rule id ever given
# Per user: what all of a user's rules may hold in `metadata`, and in stored documents. Every
# other field of a rule is bounded by the schema; these keep one user's rule list well inside
# what one read (a gRPC message, the gateway's answer) carries.
MAX_USER_METADATA_BYTES = 256 * 1024
MAX_USER_RULES_BYTES = 4 * 1024 * 1024


def iso(ts: float | None) -> str | None:
    """ISO-8601 UTC with a Z, as TBM's frontend expects."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rule_json(stored: StoredRule) -> dict[str, Any]:
    """A stored rule in TBM's shape, with its bookkeeping."""
    return {
        "id": stored.id,
        **rule_doc(stored.rule),
        "last_evaluated_at": iso(stored.last_evaluated_at),
        "last_executed_at": iso(stored.last_executed_at),
        "execution_count": stored.execution_count,
        "created_at": iso(stored.created_at),
        "updated_at": iso(stored.updated_at),
    }


@dataclass(frozen=True, slots=True)
class LogRow:
    """One execution log row with its per-torrent action records."""

    id: int
    rule_id: int
    rule_name: str
    execution_type: str
    items_processed: int
    success: bool
    error_message: str | None
    executed_at: float
    dry_run: bool
    actions: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One torrent in a preview: whether the rule matches it, and why (not)."""

    torrent_id: int
    name: str
    status: str
    matched: bool
    actionable: bool
    skip_reason: str
    conditions: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Preview:
    """A preview of an unsaved rule against the current state."""

    total: int
    matched: int
    torrents: list[PreviewRow]
    observed_at: float | None


class RuleService:
    """Rules stored in each user's database."""

    def __init__(self, pool: DatabasePool, registry: Registry, clock: Clock) -> None:
        self.pool = pool
        self.registry = registry
        self.clock = clock

    async def _rules(self, handle: Handle) -> list[StoredRule]:
        return (await user_db.load(handle)).rules

    async def list_rules(self, auth_id: str) -> list[dict[str, Any]]:
        """Every rule, in order."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            return [rule_json(r) for r in await self._rules(handle)]

    async def get(self, auth_id: str, rule_id: int) -> dict[str, Any]:
        """One rule (NOT_FOUND when unknown)."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            return rule_json(_find(await self._rules(handle), rule_id))

    async def save_all(self, auth_id: str, docs: Any) -> list[dict[str, Any]]:
        """Replace-all: known ids are updated (keeping logs), others inserted, missing deleted."""
        self.registry.require(auth_id)
        rules = parse_rules(docs)
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            current = {r.id: r for r in await self._rules(handle)}
            statements: list[tuple[str, Any]] = []
            fresh: list[int] = []  # rules new or changed: first evaluated an interval from now
            kept = {r.id for r in rules if r.id in current}
            for rule_id in current.keys() - kept:
                statements.append(("DELETE FROM rules WHERE id=?", (rule_id,)))
            next_id = await _next_rule_id(handle, current)
            documents = [_document(rule) for rule in rules]
            _check_user_totals(list(zip(rules, documents, strict=True)), "rules[{}].")
            for position, (rule, document) in enumerate(zip(rules, documents, strict=True)):
                old = current.get(rule.id) if rule.id is not None else None
                if old is not None:
                    if _document(old.rule) != document:
                        # Conditions may have moved: their holds no longer mean anything.
                        statements.append(
                            ("DELETE FROM condition_holds WHERE rule_id=?", (old.id,))
                        )
                        statements.append(_first_due(old.id, rule, now))
                        fresh.append(old.id)
                    statements.append(
                        (
                            "UPDATE rules SET position=?, name=?, enabled=?, document=?, "
                            "updated_at=? WHERE id=?",
                            (position, rule.name, int(rule.enabled), document, now, old.id),
                        )
                    )
                else:
                    statements.append(
                        (
                            "INSERT INTO rules(id, position, name, enabled, document, created_at, "
                            "updated_at) VALUES (?,?,?,?,?,?,?)",
                            (next_id, position, rule.name, int(rule.enabled), document, now, now),
                        )
                    )
                    statements.append(_first_due(next_id, rule, now))
                    fresh.append(next_id)
                    next_id += 1
            statements.append((user_db.UPSERT_META, (RULES_LAST_ID_KEY, str(next_id - 1))))
            await handle.transaction(statements)
            handle.cache.pop(user_db.CACHE_KEY, None)
            saved = await self._rules(handle)
            await _log_what_saving_would_do(handle, fresh, now)
        await self.registry.set_has_enabled_rules(auth_id, any(r.rule.enabled for r in saved), now)
        return [rule_json(r) for r in saved]

    async def update(self, auth_id: str, rule_id: int, patch: Any) -> dict[str, Any]:
        """Change some fields of one rule (usually `enabled`); the result is validated whole."""
        self.registry.require(auth_id)
        if not isinstance(patch, Mapping):
            raise InvalidArgument("the body must be a JSON object", field="body")
        if "enabled" in patch and not isinstance(patch["enabled"], bool):
            raise InvalidArgument("enabled must be true or false", field="enabled")
        now = self.clock()
        async with self.pool.use(auth_id) as handle:
            current = await self._rules(handle)
            stored = _find(current, rule_id)
            merged = {**rule_doc(stored.rule), **{k: v for k, v in patch.items() if k != "id"}}
            rule = parse_rule({**merged, "id": rule_id})
            if len(iter_conditions(rule.root)) > len(iter_conditions(stored.rule.root)):
                # Only growth is refused: a set saved before the limit may still be switched off.
                others = [r.rule for r in current if r.id != rule_id]
                check_user_conditions([*others, rule], field="groups")
            document = _document(rule)
            _check_user_totals(
                [
                    (rule, document) if r.id == rule_id else (r.rule, _document(r.rule))
                    for r in current
                ],
                "",
            )
            statements: list[tuple[str, Any]] = [
                (
                    "UPDATE rules SET name=?, enabled=?, document=?, updated_at=? WHERE id=?",
                    (rule.name, int(rule.enabled), document, now, rule_id),
                )
            ]
            if rule_doc(rule)["groups"] != rule_doc(stored.rule)["groups"]:
                statements.append(("DELETE FROM condition_holds WHERE rule_id=?", (rule_id,)))
            changed = rule_doc(rule) != rule_doc(stored.rule)
            if changed:
                statements.append(_first_due(rule_id, rule, now))
            await handle.transaction(statements)
            handle.cache.pop(user_db.CACHE_KEY, None)
            rules = await self._rules(handle)
            if changed:
                await _log_what_saving_would_do(handle, [rule_id], now)
        await self.registry.set_has_enabled_rules(auth_id, any(r.rule.enabled for r in rules), now)
        return rule_json(_find(rules, rule_id))

    async def delete(self, auth_id: str, rule_id: int) -> None:
        """Delete a rule and its logs (NOT_FOUND when unknown)."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            _find(await self._rules(handle), rule_id)
            await handle.transaction([("DELETE FROM rules WHERE id=?", (rule_id,))])
            handle.cache.pop(user_db.CACHE_KEY, None)
            rules = await self._rules(handle)
        await self.registry.set_has_enabled_rules(
            auth_id, any(r.rule.enabled for r in rules), self.clock()
        )

    async def logs(self, auth_id: str, rule_id: int, limit: int) -> list[LogRow]:
        """A rule's execution log, newest first, each row with its action records."""
        self.registry.require(auth_id)
        limit = max(1, min(limit or 100, 1000))
        async with self.pool.use(auth_id) as handle:
            _find(await self._rules(handle), rule_id)
            rows = list(
                await handle.fetchall(
                    "SELECT id, rule_id, rule_name, execution_type, items_processed, success, "
                    "error_message, executed_at, dry_run FROM rule_logs WHERE rule_id=? "
                    "ORDER BY id DESC LIMIT ?",
                    (rule_id, limit),
                )
            )
            by_log: dict[int, list[dict[str, Any]]] = {}
            if rows:
                ids = [row[0] for row in rows]
                for action in await handle.fetchall(
                    f"SELECT {ACTION_COLUMNS} FROM actions WHERE log_id IN "
                    f"({','.join('?' * len(ids))}) ORDER BY id",
                    ids,
                ):
                    by_log.setdefault(action[-1], []).append(action_dict(action))
        return [
            LogRow(
                id=r[0],
                rule_id=r[1],
                rule_name=r[2],
                execution_type=r[3],
                items_processed=r[4],
                success=bool(r[5]),
                error_message=r[6],
                executed_at=r[7],
                dry_run=bool(r[8]),
                actions=by_log.get(r[0], []),
            )
            for r in rows
        ]

    async def clear_logs(self, auth_id: str, rule_id: int) -> None:
        """Delete a rule's execution log (its action records stay for the torrents' history)."""
        self.registry.require(auth_id)
        async with self.pool.use(auth_id) as handle:
            _find(await self._rules(handle), rule_id)
            await handle.transaction(
                [
                    ("UPDATE actions SET log_id=NULL WHERE rule_id=?", (rule_id,)),
                    ("DELETE FROM rule_logs WHERE rule_id=?", (rule_id,)),
                ],
            )

    async def preview(self, auth_id: str, doc: Any) -> Preview:
        """Evaluate an unsaved rule against the current state, explaining every condition."""
        self.registry.require(auth_id)
        rule = parse_rule(doc)
        compiled = compile_rule(rule)
        async with self.pool.use(auth_id) as handle:
            data = await user_db.load(handle)
            now = data.last_observed_at
            states = [s for s in data.states.values() if s.present]
            shielded = protected_keys(data.states, data.protected)
            tags = await rule_tags.load_mappings(handle) if rule.uses_tags else None
        rows: list[PreviewRow] = []
        if now is not None:
            for state in sorted(states, key=lambda s: s.key):
                item_tags = None if tags is None else tags.get(state.snap.id, frozenset())
                result = compiled.test(state, now, {}, {}, item_tags)
                reason = (
                    skip_reason(rule.action, state, item_tags, rule.tag_ids) if result else None
                )
                # As the planner: protection holds back only the actions it is about.
                if (
                    result
                    and reason is None
                    and rule.action in PROTECTED_ACTIONS
                    and state.key in shielded
                ):
                    reason = "protected"
                rows.append(
                    PreviewRow(
                        torrent_id=state.snap.id,
                        name=state.snap.name,
                        status=state.status,
                        matched=result is True,
                        actionable=result is True and reason is None,
                        skip_reason=reason or "",
                        conditions=[
                            trace_dict(t) for t in explain(rule, state, now, {}, item_tags)
                        ],
                    )
                )
        rows.sort(key=lambda r: (not r.matched, r.torrent_id))
        return Preview(len(rows), sum(1 for r in rows if r.matched), rows, now)

    @staticmethod
    def presets() -> list[dict[str, Any]]:
        """The built-in example rules (disabled until the user enables them)."""
        return [dict(p) for p in PRESETS]


ACTION_COLUMNS = (
    "id, rule_id, rule_name, torrent_key, hash, name, action, dry_run, status, reason, "
    "error_code, error_message, created_at, completed_at, log_id"
)


def action_dict(row: Any) -> dict[str, Any]:
    """An action record row as a dict (the last column, log_id, is left out)."""
    return {
        "action_id": row[0],
        "rule_id": row[1],
        "rule_name": row[2],
        "torrent_id": abs(row[3]),
        "queued": row[3] < 0,
        "hash": row[4],
        "name": row[5],
        "action": row[6],
        "dry_run": bool(row[7]),
        "status": row[8],
        "reason_json": row[9],
        "error_code": row[10],
        "error_message": row[11],
        "created_at": row[12],
        "completed_at": row[13],
    }


def _document(rule: Rule) -> str:
    """A rule as stored in its row (compact JSON)."""
    return json.dumps(rule_doc(rule), separators=(",", ":"))


def _check_user_totals(rules: list[tuple[Rule, str]], prefix: str) -> None:
    """Refuse (400) a rule set whose metadata or documents together exceed the user's bounds.

    `prefix` formats a rule's position into the field named (``rules[{}].`` for a replace-all,
    empty for one rule's update).
    """
    metadata = documents = 0
    for index, (rule, document) in enumerate(rules):
        metadata += json_bytes(rule.metadata)
        if metadata > MAX_USER_METADATA_BYTES:
            raise InvalidArgument(
                f"the rules' metadata together is larger than "
                f"{MAX_USER_METADATA_BYTES // 1024} KiB",
                field=f"{prefix.format(index)}metadata",
            )
        documents += len(document.encode())
    if documents > MAX_USER_RULES_BYTES:
        raise InvalidArgument(
            f"the rules together are larger than {MAX_USER_RULES_BYTES // (1024 * 1024)} MiB",
            field="rules",
        )


async def _next_rule_id(handle: Handle, current: Mapping[int, StoredRule]) -> int:
    """The id for the next new rule: above every id ever given, so never a deleted rule's.

    A reused id would inherit the deleted rule's per-torrent cooldowns (the action log keeps
    rule ids) and history. The high-water mark lives in meta; the action log covers databases
    from before it was kept.
    """
    ((last, acted),) = await handle.fetchall(
        "SELECT (SELECT value FROM meta WHERE key = ?), (SELECT MAX(rule_id) FROM actions)",
        (RULES_LAST_ID_KEY,),
    )
    return max([0, int(last or 0), int(acted or 0), *current]) + 1


def _first_due(rule_id: int, rule: Rule, now: float) -> tuple[str, Any]:
    """The statement that sets when a just-saved rule is first evaluated on schedule.

    TBM's backend first evaluates a saved or enabled rule one trigger interval later; ours
    did at the next poll, so a user trying a delete preset lost downloads within seconds.
    """
    wait = rule.trigger.interval_minutes * 60.0 if rule.trigger.kind == "interval" else 0.0
    # The schema sets no upper bound on an interval: keep the date one a clock can print.
    return (
        "UPDATE rules SET not_before=? WHERE id=?",
        (now + min(wait, MAX_WAIT_SECONDS), rule_id),
    )


async def _log_what_saving_would_do(handle: Handle, rule_ids: list[int], now: float) -> None:
    """A log row per saved, enabled rule: what it would do if it were evaluated now.

    Written as a dry run ("saved"), with no action records (they would start cooldowns).
    """
    data = await user_db.load(handle)
    observed = data.last_observed_at
    if observed is None:
        return
    present = {k: s for k, s in data.states.items() if s.present}
    shielded = protected_keys(data.states, data.protected)
    saved = [r for r in data.rules if r.id in rule_ids and r.rule.enabled]
    tags = await rule_tags.load_mappings(handle) if any(r.rule.uses_tags for r in saved) else {}
    rows = []
    for stored in saved:
        rule = stored.rule
        would = [
            state.snap.name
            for key, state in sorted(present.items())
            if stored.compiled.test(state, observed, {}, {}, tags.get(state.snap.id, _NONE)) is True
            and skip_reason(rule.action, state, tags.get(state.snap.id, _NONE), rule.tag_ids)
            is None
            and not (rule.action in PROTECTED_ACTIONS and key in shielded)
        ]
        if stored.rule.trigger.kind == "event":
            first = "on its events from now on"
        else:
            first = f"first scheduled evaluation {iso(stored.not_before) or 'at the next poll'}"
        examples = "; ".join(would[:3]) + ("; ..." if len(would) > 3 else "")
        message = (
            f"saved: on the last poll it would {stored.rule.action.replace('_', ' ')} "
            f"{len(would)} of {len(present)} downloads{': ' + examples if would else ''}; "
            f"{first}"
        )
        rows.append((stored.id, stored.rule.name, message))
    if not rows:
        return
    ids = user_db.take_ids(data, "rule_logs", len(rows))
    await handle.transaction(
        [
            (
                "INSERT INTO rule_logs(id, rule_id, rule_name, execution_type, items_processed, "
                "success, error_message, executed_at, dry_run) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    # Nothing was processed: TBM shows items_processed as "items affected".
                    (log_id, rule_id, name, "saved", 0, 1, message, now, 1)
                    for log_id, (rule_id, name, message) in zip(ids, rows, strict=True)
                ],
            )
        ]
    )


def _find(rules: list[StoredRule], rule_id: int) -> StoredRule:
    for stored in rules:
        if stored.id == rule_id:
            return stored
    raise NotFound(f"Rule {rule_id} not found", code="RULE_NOT_FOUND", field="id")
