"""Route declarations: each endpoint once, from which the router and the OpenAPI document follow.

A resource module (``gateway/tags.py``, ``gateway/downloads.py``...) declares a tuple of
:class:`Route`: method, path, handler, summary, and the pydantic models of its body
(:class:`gateway.bodies.Body`), its query (:class:`Query`) and its answer (:class:`Answer`).
The app registers the handlers in that order and :mod:`gateway.openapi` builds every operation
from the same declarations, so nothing can be served undocumented or documented differently.
An answer model is a declaration of the shape TBM's frontend reads; handlers build it and
:func:`answer` serialises it, so the document cannot drift from what is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from common.errors import InvalidArgument
from gateway.inputs import INTEGER

if TYPE_CHECKING:
    from gateway.bodies import Body
    from gateway.handlers import Handlers

Handler = Callable[["Handlers", web.Request], Awaitable[web.StreamResponse]]
Q = TypeVar("Q", bound="Query")

# The errors most routes can answer; a route that can answer others lists its own.
ERRORS: tuple[int, ...] = (400, 401, 403, 404, 429, 503)


class Answer(BaseModel):
    """The base of every success answer: TBM's envelope, ``success: true``."""

    model_config = ConfigDict(frozen=True)
    # Properties documented by another component (a rule is the "Rule" schema).
    documented: ClassVar[dict[str, Any]] = {}

    success: Literal[True] = True


class Ok(Answer):
    """A success with nothing more to say."""


class Message(Answer):
    """A success with TBM's message."""

    message: str


class Query(BaseModel):
    """The base of a route's query parameters (strings in the URL, coerced by the model)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def answer(model: BaseModel, status: int = 200) -> web.Response:
    """Send a declared answer as JSON (None stays null: TBM reads some nulls)."""
    return web.json_response(model.model_dump(mode="json"), status=status)


def query(request: web.Request, model: type[Q]) -> Q:
    """The request's query as `model`, or InvalidArgument naming the first bad parameter.

    An empty value (``?limit=``) counts as absent, as browsers and TBM's proxies send them.
    """
    try:
        return model.model_validate({k: v for k, v in request.query.items() if v != ""})
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "query"
        # TBM's own words (bodies.tbm_error) go out as they are: its frontend compares them.
        message = first["msg"] if first["type"] == "tbm" else f"{field} {first['msg']}"
        raise InvalidArgument(message, field=field) from None


def whole(lo: int, hi: int) -> Any:
    """A query integer within [lo, hi] (digits only: no "1e3", no "1.0")."""

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not INTEGER.fullmatch(value):
            raise PydanticCustomError("whole", "must be a whole number")
        number = int(value)
        if not lo <= number <= hi:
            raise PydanticCustomError("range", f"must be between {lo} and {hi}")
        return number

    return BeforeValidator(check, json_schema_input_type=int)


def flag() -> Any:
    """A query flag: 1/true/yes or 0/false/no (case-insensitive)."""

    def check(value: Any) -> Any:
        text = str(value).lower()
        if text in ("0", "false", "no"):
            return False
        if text in ("1", "true", "yes"):
            return True
        raise PydanticCustomError("flag", "must be true or false")

    return BeforeValidator(check, json_schema_input_type=bool)


def text(limit: int) -> Any:
    """Free query text of at most `limit` characters."""

    def check(value: Any) -> Any:
        if not isinstance(value, str) or len(value) > limit:
            raise PydanticCustomError("text", f"must be at most {limit} characters")
        return value

    return BeforeValidator(check, json_schema_input_type=str)


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: where it is, what runs it, and what it takes and answers."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[Body] | None = None
    query: type[Query] | None = None
    answer: type[BaseModel] | None = None
    errors: tuple[int, ...] = ERRORS
    auth: bool = True
    tag: str = "automation"
    # A stream (Server-Sent Events) answers text/event-stream instead of JSON.
    stream: bool = False
    # A file answers raw bytes instead of JSON.
    binary: bool = False
    # The largest body this route reads, when not the app's 1 MiB.
    max_body: int | None = None
