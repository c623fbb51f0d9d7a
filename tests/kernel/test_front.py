"""The front door sends `GET`/`HEAD /{one segment}` to the front app, all else to the router."""

from __future__ import annotations

import pytest
from starlette.types import Receive, Scope, Send

from app.kernel.front import FrontDoor, route_path


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope.get("path", scope["type"]))


async def _receive() -> dict[str, object]:
    return {"type": "http.request"}


async def _send(message: dict[str, object]) -> None:
    return None


async def who_answers(method: str, path: str, root_path: str = "") -> str:
    router, front = Recorder(), Recorder()
    door = FrontDoor(router, front, literal_paths={"/healthz", "/openapi.json"})
    scope = {"type": "http", "method": method, "path": root_path + path, "root_path": root_path}
    await door(scope, _receive, _send)
    return "front" if front.paths else "router"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/abc123", "front"),
        ("HEAD", "/abc123", "front"),
        ("GET", "/%00", "front"),  # the front app answers the 404 of an impossible code
        ("POST", "/abc123", "router"),
        ("DELETE", "/abc123", "router"),
        ("GET", "/healthz", "router"),
        ("GET", "/openapi.json", "router"),
        ("GET", "/", "router"),
        ("GET", "/api/links", "router"),
        ("GET", "/abc123/", "router"),
    ],
)
async def test_who_answers(method: str, path: str, expected: str) -> None:
    assert await who_answers(method, path) == expected


async def test_a_root_path_is_not_part_of_the_route() -> None:
    assert await who_answers("GET", "/abc123", root_path="/s") == "front"
    assert await who_answers("GET", "/healthz", root_path="/s") == "router"
    assert route_path({"path": "/s/abc", "root_path": "/s"}) == "/abc"


async def test_websockets_and_lifespan_go_to_the_router() -> None:
    router, front = Recorder(), Recorder()
    door = FrontDoor(router, front, literal_paths=())
    await door({"type": "websocket", "path": "/abc"}, _receive, _send)
    await door({"type": "lifespan"}, _receive, _send)
    assert front.paths == []


def test_a_root_path_is_a_whole_leading_segment_only() -> None:
    assert route_path({"path": "/sabc", "root_path": "/s"}) == "/sabc"
    assert route_path({"path": "/s", "root_path": "/s"}) == "/"
