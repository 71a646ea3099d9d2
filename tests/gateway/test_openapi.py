"""The OpenAPI document and the routes stay in step: nothing served undocumented, nothing extra."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import web

from gateway.app import ROUTES, routes
from gateway.clients import Backends
from gateway.config import GatewaySettings
from gateway.handlers import Handlers
from gateway.openapi import document as build_document
from gateway.reference import reference


def document() -> dict[str, Any]:
    """The document built from the declarations the app serves."""
    return build_document(ROUTES)


METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest_asyncio.fixture
async def handlers() -> AsyncIterator[Handlers]:
    """Handlers over channels that are never used (nothing listens; routes only need methods)."""
    settings = GatewaySettings.from_env({})
    backends = Backends(settings.userstore_addrs, settings.scheduler_addrs, 1.0)
    try:
        yield Handlers(settings, backends)
    finally:
        await backends.close()


def served(handlers: Handlers) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app registers."""
    pairs = set()
    for route in routes(handlers):
        assert isinstance(route, web.RouteDef)
        pairs.add((route.method.upper(), route.path))
    return pairs


def documented() -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in the document."""
    return {
        (method.upper(), path)
        for path, operations in document()["paths"].items()
        for method in operations
        if method in METHODS
    }


async def test_every_route_is_documented_and_nothing_else(handlers: Handlers) -> None:
    """The set of routes equals the set of documented operations, method by method."""
    routes_only = served(handlers) - documented()
    documented_only = documented() - served(handlers)
    assert routes_only == set(), f"routes missing from the OpenAPI document: {routes_only}"
    assert documented_only == set(), f"documented but not served: {documented_only}"


async def test_path_parameters_are_declared(handlers: Handlers) -> None:
    """Every {placeholder} in a documented path is a declared path parameter of each operation."""
    for path, operations in document()["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


async def test_document_is_well_formed() -> None:
    """OpenAPI 3.1; each operation has a summary and a 200; errors use Error; $refs resolve."""
    doc = document()
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, ref
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], (method, path)
            assert "200" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)
            if operation.get("requestBody"):
                assert 413 in {int(s) for s in operation["responses"]}, (method, path)


def test_every_json_route_declares_its_answer() -> None:
    """Handlers build their answers from these models, so the document is what is sent."""
    missing = [
        (r.method, r.path)
        for r in ROUTES
        if r.answer is None and not r.stream and not r.binary and r.path != "/openapi.json"
    ]
    assert missing == []


def test_query_parameters_come_from_the_declared_models() -> None:
    """A query model's fields are the operation's query parameters, with their bounds."""
    operation = document()["paths"]["/api/archived-downloads"]["get"]
    query = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"}
    assert set(query) == {"page", "limit", "search"}
    assert query["limit"]["type"] == "integer"


def test_the_api_reference_is_fresh() -> None:
    """docs/api.md is what `make docs` writes from the declarations the app serves."""
    committed = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    assert committed == reference(ROUTES), "docs/api.md is stale: run 'make docs' and commit"
