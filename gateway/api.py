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
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.bodies import invalid

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
    documented: ClassVar[dict[str, dict[str, Any]]] = {}

    success: Literal[True] = True


class Query(BaseModel):
    """The base of a route's query parameters (strings in the URL, coerced by the model)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def answer(model: BaseModel, status: int = 200) -> web.Response:
    """Send a declared answer as JSON (None stays null: TBM reads some nulls)."""
    return web.json_response(model.model_dump(mode="json"), status=status)


def query(request: web.Request, model: type[Q]) -> Q:
    """The request's query as `model`, or InvalidArgument naming the first bad parameter."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        raise invalid(error) from None


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
    # The largest body this route reads, when not the app's 1 MiB.
    max_body: int | None = None
