"""The express lane in the server's protocol (app.kernel.express), over raw sockets to a real
uvicorn process whose lane answers `/now...` at once and holds `/held...` until released
(tests/kernel/limited_server.py): framing, order behind a held answer, what goes to ASGI."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.kernel.server import ServerSettings
from tests.kernel.test_server import (
    GUARD,
    Exchange,
    Served,
    exchange,
    get,
    post,
    start,
    status_of,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from start(tmp_path_factory.mktemp("express"), ServerSettings())


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    limits = ServerSettings(keep_alive_seconds=0.5, body_timeout_seconds=2)
    yield from start(tmp_path_factory.mktemp("impatient-express"), limits)


@pytest.fixture(scope="module")
def without_lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from start(tmp_path_factory.mktemp("no-express"), ServerSettings(express=False))


def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Each response of a connection: status, headers (lower-cased names), body."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        fields = (line.split(": ", 1) for line in lines[1:])
        headers = {name.lower(): value for name, value in fields}
        length = int(headers.get("content-length", "0"))
        found.append((status_of(head), headers, rest[:length]))
        data = rest[length:]
    return found


def test_the_lane_answers_with_the_servers_date_and_keeps_the_connection(
    server: Served,
) -> None:
    answered = exchange(server, [get("/now-a?x=1") + get("/now-b", b"Connection: close\r\n")])

    first, second = responses(answered.data)
    assert first[0] == second[0] == 302
    assert first[1]["x-path"] == "/now-a"
    assert first[1]["x-query"] == "x=1"
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", first[1]["date"])
    assert "connection" not in first[1]
    assert second[1]["x-path"] == "/now-b"
    assert second[1]["connection"] == "close"
    assert first[2] == second[2] == b"there"
    assert answered.closed


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_http_1_0_request_is_answered_and_the_connection_closed(
    server: Served, method: str
) -> None:
    answered = exchange(server, [f"{method} /now HTTP/1.0\r\n\r\n".encode()])

    status, headers, _ = responses(answered.data)[0]
    assert (status, headers["connection"]) == (302, "close")
    # A HEAD answer has the GET's content-length and no body: nothing follows it.
    assert answered.data.endswith(b"\r\n\r\n" if method == "HEAD" else b"there")
    assert answered.closed


def test_a_percent_encoded_path_reaches_the_lane_decoded(server: Served) -> None:
    answered = exchange(server, [get("/now%2Dx", b"Connection: close\r\n")])

    assert responses(answered.data)[0][1]["x-path"] == "/now-x"


def test_answers_pipelined_behind_a_held_one_wait_for_it_in_order(server: Served) -> None:
    """`/held` is answered only once released; the requests sent behind it in the same
    write are queued, as uvicorn queues pipelined requests, and answered after it through
    ASGI (`/now-3` too: here only the lane knows it, so ASGI's 404 shows who answered)."""
    pipelined = get("/held-1") + get("/") + get("/now-3", b"Connection: close\r\n")
    result: list[Exchange] = []
    client = threading.Thread(target=lambda: result.append(exchange(server, [pipelined])))
    client.start()
    deadline = time.monotonic() + GUARD
    while True:  # until the server has parsed the held request and holds it
        released = exchange(server, [post("/release", b"{}", b"Connection: close\r\n")])
        if b'"released":1' in released.data:
            break
        assert time.monotonic() < deadline, "the held request never reached the lane"
        time.sleep(0.02)
    client.join(GUARD)

    answers = responses(result[0].data)
    assert [(status, headers.get("x-path")) for status, headers, _ in answers] == [
        (302, "/held-1"),
        (200, None),
        (404, None),
    ]
    assert answers[1][2] == b"ok"


def test_a_request_read_with_an_answered_one_is_not_cut_by_its_keep_alive_timer(
    impatient: Served,
) -> None:
    """The lane answers `/now` while the read is parsed; the stalled POST read with it is
    under the body timeout (a 408), not the keep-alive timer the answer armed."""
    stalled = b"POST /raw HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{"

    answered = exchange(impatient, [get("/now") + stalled])

    assert [status for status, _, _ in responses(answered.data)] == [302, 408]
    assert answered.closed


def test_a_graceful_shutdown_waits_for_an_answer_whose_client_left(
    tmp_path: Path,
) -> None:
    """The answer is among uvicorn's tasks: the server stops only once it is done (the
    click a redirect records with it is not cut short)."""
    served = next(started := start(tmp_path, ServerSettings()))
    exchange(served, [get("/later")], hang_up=True)
    served.wait_for_log("holding /later")
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=GUARD)
    started.close()

    assert "answered /later" in served.log()


def test_a_request_with_a_body_goes_through_asgi(server: Served) -> None:
    request = b"GET /now HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"

    answered = exchange(server, [request])

    assert status_of(answered.data) == 404  # no route /now: only the lane has it


def test_a_failing_lane_hands_the_request_to_asgi_and_logs_why(server: Served) -> None:
    before = len(server.log())

    answered = exchange(server, [get("/boom", b"Connection: close\r\n")])

    assert status_of(answered.data) == 404
    assert "RuntimeError: the lane broke" in server.wait_for_log("the express lane failed", before)


def test_a_lane_whose_answer_fails_later_answers_a_500_problem(server: Served) -> None:
    before = len(server.log())

    answered = exchange(server, [get("/fails-later", b"Connection: close\r\n")])

    status, headers, body = responses(answered.data)[0]
    assert (status, headers["content-type"]) == (500, "application/problem+json")
    assert b"the answer broke" not in body
    assert "RuntimeError: the answer broke" in server.wait_for_log(
        "the express lane failed", before
    )


def test_a_server_without_the_lane_sends_everything_through_asgi(without_lane: Served) -> None:
    answered = exchange(without_lane, [get("/now", b"Connection: close\r\n")])

    assert status_of(answered.data) == 404
