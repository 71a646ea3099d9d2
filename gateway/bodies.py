"""Request bodies, each declared once: validation, the error naming the field, the OpenAPI schema.

A body is a pydantic model. :func:`read` parses the request with the JSON hygiene of
:mod:`gateway.inputs`, validates it against the model and turns the first failure into our
InvalidArgument naming the field (``download_ids.3``). Where TBM's frontend or its Next.js server
compares an error string, the model raises that exact string (:func:`tbm_error`). :func:`schemas`
gives the JSON Schema of every model for the OpenAPI document. Extra fields (``apiKey``,
``authId``, which TBM's proxies add) are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from common.errors import InvalidArgument
from gateway.inputs import INT64_MAX, json_object

M = TypeVar("M", bound="Body")


class Body(BaseModel):
    """The base of every request body.

    A required field TBM words its own error for is declared with a None default and a
    validator that raises that error (pydantic's own "missing" would come first otherwise);
    `required` names them for the schema.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    required: ClassVar[tuple[str, ...]] = ()
    # Properties documented by another component (a rule document is the "Rule" schema).
    documented: ClassVar[dict[str, dict[str, Any]]] = {}


def tbm_error(message: str, field: str | None = None) -> PydanticCustomError:
    """A validation failure whose message is exactly `message` (TBM compares some of them).

    `field` names the field when the check runs over the whole body (a model validator, whose
    failures have no location of their own): TBM orders some checks across fields.
    """
    return PydanticCustomError("tbm", message, {"field": field} if field else None)


def _id(value: Any) -> int:
    """A download id: a positive integer, or its digits in a string (TBM sends both)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= INT64_MAX:
        return value
    # At most 19 digits: Python refuses int() of a very long string, and it would not fit anyway.
    if (
        isinstance(value, str)
        and 0 < len(value) <= 19
        and value.isascii()
        and value.isdigit()
        and 0 < int(value) <= INT64_MAX
    ):
        return int(value)
    raise PydanticCustomError("id", "must be a positive integer")


DownloadId = Annotated[int, BeforeValidator(_id)]


def required_list(name: str, limit: int) -> Any:
    """A required list of 1..`limit` items, refused in TBM's words for every such list."""
    empty = f"{name} array is required and must not be empty"
    too_many = f"{name} array must not exceed {limit} items"

    def check(value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise tbm_error(empty)
        if len(value) > limit:
            raise tbm_error(too_many)
        return value

    return BeforeValidator(check)


def list_field(limit: int) -> Any:
    """The field of a :func:`required_list` (None until validated, so TBM's words come first)."""
    return Field(default=None, validate_default=True, min_length=1, max_length=limit)


async def read(request: web.Request, model: type[M]) -> M:
    """The request's body as `model`, or InvalidArgument naming the first bad field."""
    raw = await json_object(request)
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise invalid(error) from None


def invalid(error: ValidationError) -> InvalidArgument:
    """Our error for pydantic's first complaint: the field's path and the reason."""
    first = error.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or (first.get("ctx") or {}).get(
        "field", "body"
    )
    message = str(first["msg"])
    if first["type"] == "missing":
        message = f"{field} is required"
    return InvalidArgument(message, field=field)


def schema(model: type[Body]) -> dict[str, Any]:
    """The model's JSON Schema, with nested models under the OpenAPI components."""
    document = model.model_json_schema(ref_template="#/components/schemas/{model}")
    if model.required:
        document["required"] = list(model.required)
        for name in model.required:
            document["properties"][name].pop("default", None)
    for name, fragment in model.documented.items():
        document["properties"][name] = fragment
    return document


def schemas(*models: type[Body]) -> dict[str, Any]:
    """Component schemas for the OpenAPI document: every model and what it nests."""
    out: dict[str, Any] = {}
    for model in models:
        document = schema(model)
        out.update(document.pop("$defs", {}))
        out[model.__name__] = document
    return out


# Download protection -----------------------------------------------------------------------------

MAX_PROTECT_IDS = 1000
_PROTECT_IDS = required_list("download_ids", MAX_PROTECT_IDS)


def _required_bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise tbm_error("protected boolean is required")
    return value


def _operation(value: Any) -> Any:
    if value not in ("delete", "archive", "stop_seeding"):
        raise tbm_error("operation must be a destructive download operation")
    return value


class SetProtection(Body):
    """PUT /api/downloads/protect: protect (or unprotect) downloads by the ids TBM shows."""

    required = ("download_ids", "protected")

    download_ids: Annotated[list[DownloadId], _PROTECT_IDS] = list_field(MAX_PROTECT_IDS)
    protected: Annotated[bool, BeforeValidator(_required_bool)] = Field(
        default=None, validate_default=True
    )


class AssertProtection(Body):
    """POST /api/downloads/protect/assert: which ids a destructive operation may touch."""

    required = ("download_ids", "operation")

    download_ids: Annotated[list[DownloadId], _PROTECT_IDS] = list_field(MAX_PROTECT_IDS)
    operation: Annotated[str, BeforeValidator(_operation)] = Field(
        default=None,
        validate_default=True,
        json_schema_extra={"enum": ["delete", "archive", "stop_seeding"]},
    )


# Archived downloads ------------------------------------------------------------------------------

MAX_BULK = 500
MAX_TEXT = 2000


def _required_id(value: Any) -> Any:
    try:
        return _id(value)
    except PydanticCustomError:
        raise tbm_error("torrent_id and hash are required") from None


def _hash(value: Any) -> str | None:
    """An info hash as TBM takes it (any non-blank text), or None."""
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        return None
    return value.strip()


def _required_hash(value: Any) -> Any:
    info_hash = _hash(value)
    if info_hash is None:
        raise tbm_error("torrent_id and hash are required")
    return info_hash


Text = Annotated[str | None, Field(default=None, max_length=MAX_TEXT)]


class ArchiveDownload(Body):
    """POST /api/archived-downloads: remember a download so it can be re-added later."""

    required = ("torrent_id", "hash")

    torrent_id: Annotated[int, BeforeValidator(_required_id)] = Field(
        default=None, validate_default=True
    )
    hash: Annotated[str, BeforeValidator(_required_hash)] = Field(
        default=None, validate_default=True, max_length=128
    )
    name: Text = None
    tracker: Text = None
    magnet: Annotated[str | None, Field(default=None, max_length=MAX_TEXT, pattern="^magnet:")] = (
        None
    )


def _loose_entry(value: Any) -> Any:
    """Bulk entries as TBM takes them: anything; the ones without an id and a hash are skipped."""
    return value if isinstance(value, dict) else {}


class ArchiveEntry(Body):
    """One download of a bulk archive (kept loose: an entry TBM would skip is skipped here)."""

    torrent_id: Any = None
    hash: Any = None
    name: Any = None
    tracker: Any = None
    magnet: Any = None

    def usable(self) -> tuple[int, str] | None:
        """The entry's id and hash when both are usable (TBM coerces both to strings)."""
        try:
            torrent_id = _id(self.torrent_id)
        except PydanticCustomError:
            return None
        info_hash = _hash(self.hash)
        return None if info_hash is None else (torrent_id, info_hash)

    def text(self, name: str) -> str | None:
        """An optional text field, or None when it is not a usable string."""
        value = getattr(self, name)
        return value[:MAX_TEXT] if isinstance(value, str) and value else None


class ArchiveBulk(Body):
    """POST /api/archived-downloads/bulk: archive up to 500 downloads at once."""

    required = ("downloads",)

    downloads: Annotated[
        list[Annotated[ArchiveEntry, BeforeValidator(_loose_entry)]],
        required_list("downloads", MAX_BULK),
    ] = list_field(MAX_BULK)


def _archive_id(value: Any) -> Any:
    try:
        return _id(value)
    except PydanticCustomError:
        raise tbm_error("Invalid ids. All IDs must be positive integers.") from None


class DeleteArchivedBulk(Body):
    """DELETE /api/archived-downloads/bulk: forget up to 500 archive rows by their row ids."""

    required = ("ids",)

    ids: Annotated[
        list[Annotated[int, BeforeValidator(_archive_id)]], required_list("ids", MAX_BULK)
    ] = list_field(MAX_BULK)


# Rules and limits ------------------------------------------------------------------------------
# A rule document is validated whole by the userstore (its errors name the rule's own fields);
# these bodies only say where the documents are. The rule's own schema is the document's "Rule".
RULE_SCHEMA = "#/components/schemas/Rule"


def _rules(value: Any) -> Any:
    if not isinstance(value, list):
        raise PydanticCustomError("rules", "rules is required (the full list of rules)")
    return value


class SaveRules(Body):
    """POST /api/automation/rules: the full list of rules (replace-all)."""

    required = ("rules",)
    documented = {"rules": {"type": "array", "items": {"$ref": RULE_SCHEMA}}}

    rules: Annotated[list[Any], BeforeValidator(_rules)] = Field(
        default=None,
        validate_default=True,
    )


class UpdateRule(Body):
    """PUT /api/automation/rules/{id}: some of a rule's fields (usually `enabled`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    enabled: Annotated[bool | None, Field(strict=True)] = None

    def patch(self) -> dict[str, Any]:
        """The fields to change: everything sent but our credentials."""
        sent = self.model_dump(exclude_unset=True)
        sent.update(self.model_extra or {})
        return {k: v for k, v in sent.items() if k not in ("apiKey", "authId")}


class PreviewRule(Body):
    """POST /api/automation/rules/preview: a rule, bare or as {"rule": ...}."""

    model_config = ConfigDict(extra="allow", frozen=True)
    documented = {"rule": {"$ref": RULE_SCHEMA}}

    rule: dict[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        """The rule to preview."""
        if self.rule is not None:
            return self.rule
        return {k: v for k, v in (self.model_extra or {}).items() if k not in ("apiKey", "authId")}


Limit = Annotated[float | None, Field(default=None, gt=0, lt=1e6, allow_inf_nan=False, strict=True)]


class SetLimits(Body):
    """PUT /api/automation/torrents/{torrent_id}/limits: a torrent's own seeding limits."""

    seed_ratio: Limit = None
    seed_time_hours: Limit = None


# Keys --------------------------------------------------------------------------------------------


def _api_key(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise tbm_error("API key is required")
    return value.strip()


class RegisterKey(Body):
    """POST /api/backend/api-key: register (or re-register) a TorBox key."""

    required = ("apiKey",)

    apiKey: Annotated[str, BeforeValidator(_api_key)] = Field(
        default=None, validate_default=True, max_length=200
    )
    keyName: str | None = Field(default=None, max_length=200)


MODELS: tuple[type[Body], ...] = (
    RegisterKey,
    SaveRules,
    UpdateRule,
    PreviewRule,
    SetLimits,
    SetProtection,
    AssertProtection,
    ArchiveDownload,
    ArchiveBulk,
    DeleteArchivedBulk,
)
