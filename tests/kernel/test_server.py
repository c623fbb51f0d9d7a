"""The HTTP server's limits, sent as raw bytes to a real uvicorn process with them.

Each hostile request gets its status and the connection closes, the server's memory stays
flat, and slow clients are closed by the timers. Tests wait for events (an answer, a
close, a log line); a deadline only stops a test that would otherwise hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.kernel.server import ServerSettings
from tests.conftest import traversable_tmp

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GUARD = 30.0  # seconds: only ever reached when something is broken
MIB = 1024 * 1024
ONE_MIB_OF_A = b"a" * MIB


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    limits: ServerSettings

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def memory_kib(self) -> dict[str, int]:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return {
            key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
            for key in ("VmRSS", "VmHWM")
        }

    def wait_for_log(self, text: str, after: int = 0) -> str:
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            log = self.log()[after:]
            if text in log:
                return log
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared in the server's log:\n{self.log()}")


def run(
    command: list[str], port: int, log_path: Path, limits: ServerSettings, **popen: Any
) -> Iterator[Served]:
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, **popen)
    served = Served(process, port, log_path, limits)
    try:
        deadline = time.monotonic() + GUARD * 2
        while True:
            assert process.poll() is None, f"the server exited:\n{served.log()}"
            try:
                answer = exchange(served, [get("/readyz")], until_close=False)
                if answer.data and status_of(answer.data) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the server never answered:\n{served.log()}"
            time.sleep(0.1)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=GUARD)


def start(tmp_dir: Path, limits: ServerSettings) -> Iterator[Served]:
    port = free_port()
    module = "tests.kernel.limited_server"
    command = [sys.executable, "-m", module, str(port), limits.model_dump_json()]
    yield from run(command, port, tmp_dir / f"server-{port}.log", limits, cwd=ROOT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    limits = ServerSettings(max_body_bytes=256 * 1024, max_connections=16)
    yield from start(tmp_path_factory.mktemp("server"), limits)


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    limits = ServerSettings(
        header_timeout_seconds=0.5, body_timeout_seconds=0.5, keep_alive_seconds=0.5
    )
    yield from start(tmp_path_factory.mktemp("impatient"), limits)


# --- raw HTTP -------------------------------------------------------------------------------


@dataclass
class Exchange:
    data: bytes = b""
    closed: bool = False  # the server closed (or reset) the connection
    sent_all: bool = False


def exchange(
    served: Served, chunks: Iterable[bytes], *, until_close: bool = True, hang_up: bool = False
) -> Exchange:
    """Send `chunks` from a thread while reading what the server answers: until it closes
    the connection, or (not `until_close`) until one whole response arrived. With
    `hang_up`, read nothing and close once everything is sent."""
    result = Exchange()
    conn = socket.create_connection(("127.0.0.1", served.port), timeout=GUARD)

    def send() -> None:
        try:
            for chunk in chunks:
                conn.sendall(chunk)
            result.sent_all = True
        except OSError:  # the server closed while we were still sending
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        while not hang_up:
            try:
                data = conn.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                result.closed = True
                break
            result.data += data
            if not until_close and _complete(result.data):
                break
    finally:
        if not result.closed:  # wakes a sender the server stopped reading from
            sender.join(GUARD if hang_up else 0)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        sender.join(GUARD)
        conn.close()
    return result


def _complete(data: bytes) -> bool:
    head, found, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    return bool(found and length and len(body) >= int(length.group(1)))


def status_of(data: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    assert match, data[:200]
    return int(match.group(1))


def problem_of(data: bytes, status: int) -> dict[str, Any]:
    assert status_of(data) == status, data[:300]
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), head
    problem: dict[str, Any] = json.loads(body)
    assert problem["status"] == status
    return problem


def get(path: str = "/", headers: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n"


def post(path: str, body: bytes, headers: bytes = b"") -> bytes:
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + headers + b"\r\n" + body
    )


def big_header(mib: int) -> Iterator[bytes]:
    yield b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: "
    for _ in range(mib):
        yield ONE_MIB_OF_A
    yield b"\r\n\r\n"


# --- heads ----------------------------------------------------------------------------------


def test_an_ordinary_request_and_two_pipelined_ones_are_answered(server: Served) -> None:
    answered = exchange(server, [get(), get(headers=b"Connection: close\r\n")])

    assert answered.data.count(b"HTTP/1.1 200 OK") == 2
    assert answered.closed


def test_an_8_mib_header_is_a_431_and_the_connection_closes(server: Served) -> None:
    answered = exchange(server, big_header(8))

    problem = problem_of(answered.data, 431)
    assert "16 KiB" in problem["detail"]
    assert answered.closed


def test_20_000_headers_are_a_431(server: Served) -> None:
    headers = b"".join(b"X-%d: a\r\n" % n for n in range(20_000))

    answered = exchange(server, [get(headers=headers)])

    assert problem_of(answered.data, 431)
    assert answered.closed


def test_more_header_lines_than_the_limit_within_the_byte_budget_are_a_431(
    server: Served,
) -> None:
    count = server.limits.max_headers  # with Host, one more than allowed
    headers = b"".join(b"X-%d: a\r\n" % n for n in range(count))

    answered = exchange(server, [get(headers=headers)])

    problem = problem_of(answered.data, 431)
    assert f"more than {count} header lines" in problem["detail"]


def test_exactly_the_budget_is_read_and_one_byte_more_is_a_431(server: Served) -> None:
    budget = server.limits.max_header_bytes
    padding = budget - len(get(headers=b"X-Pad: \r\nConnection: close\r\n"))

    def head(size: int) -> bytes:
        return get(headers=b"X-Pad: " + b"p" * size + b"\r\nConnection: close\r\n")

    assert len(head(padding)) == budget
    assert status_of(exchange(server, [head(padding)]).data) == 200
    assert problem_of(exchange(server, [head(padding + 1)]).data, 431)


def test_a_body_read_with_its_head_does_not_count_against_the_head(server: Served) -> None:
    # 60 KiB of JSON in the same write as a small head: one read holds both.
    body = json.dumps({"text": "x" * 60_000}).encode()

    answered = exchange(server, [post("/json", body)], until_close=False)

    assert status_of(answered.data) == 200


def test_a_request_after_a_big_body_in_the_same_write_has_a_budget_of_its_own(
    server: Served,
) -> None:
    body = json.dumps({"text": "x" * 60_000}).encode()
    padded = get(headers=b"X-Pad: " + b"p" * 10_000 + b"\r\nConnection: close\r\n")

    answered = exchange(server, [post("/json", body) + padded])

    assert answered.data.count(b"HTTP/1.1 200 OK") == 2, answered.data[:500]
    assert answered.closed


def test_four_64_mib_headers_at_once_leave_memory_flat(server: Served) -> None:
    before = server.memory_kib()
    results: list[Exchange] = []

    def attack() -> None:
        results.append(exchange(server, big_header(64)))

    attackers = [threading.Thread(target=attack) for _ in range(4)]
    for attacker in attackers:
        attacker.start()
    for attacker in attackers:
        attacker.join(GUARD * 2)
    after = server.memory_kib()

    assert len(results) == 4
    for result in results:
        assert problem_of(result.data, 431)
        assert result.closed
    bound = 16 * 1024  # KiB; without the limit the server grew by ~300 MiB and stayed
    assert after["VmRSS"] - before["VmRSS"] < bound, (before, after)
    assert after["VmHWM"] <= max(before["VmHWM"], before["VmRSS"] + bound), (before, after)
    assert status_of(exchange(server, [get()], until_close=False).data) == 200


def test_a_chunked_body_in_many_reads_with_a_small_trailer_is_read(server: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"POST /raw HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        for _ in range(10):  # each chunk header apart from its data, as a slow client sends
            yield b"4000\r\n"
            time.sleep(0.005)
            yield b"c" * 0x4000 + b"\r\n"
        yield b"0\r\n"
        time.sleep(0.005)
        yield b"X-Checksum: 1234\r\n\r\n"

    answered = exchange(server, chunks(), until_close=False)

    assert status_of(answered.data) == 200
    assert json.loads(answered.data.partition(b"\r\n\r\n")[2]) == {"bytes": 10 * 0x4000}


def test_a_trailer_field_is_not_a_request_header(server: Served) -> None:
    head = b"POST /headers HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"2\r\nhi\r\n0\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n"

    answered = exchange(server, [head + body], until_close=False)

    assert status_of(answered.data) == 200
    seen = json.loads(answered.data.partition(b"\r\n\r\n")[2])
    assert seen == [["host", "t"], ["transfer-encoding", "chunked"]]


def test_a_malformed_header_is_a_400_and_a_debug_line(server: Served) -> None:
    offset = len(server.log())

    answered = exchange(server, [get(headers=b"X-Bad: a\x00b\r\n")])

    assert status_of(answered.data) == 400
    # uvicorn's logger is at INFO, so the debug line is not written; the warning was.
    time.sleep(0.5)
    assert "Invalid HTTP request" not in server.log()[offset:], server.log()[offset:]


def test_a_64_mib_trailer_after_a_chunked_body_is_a_431_and_memory_stays_flat(
    server: Served,
) -> None:
    before = server.memory_kib()
    head = b"POST /raw HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"

    def chunks() -> Iterator[bytes]:
        yield head + b"2\r\nab\r\n0\r\nX-Trailer: "
        yield from [ONE_MIB_OF_A] * 64
        yield b"\r\n\r\n"

    answered = exchange(server, chunks())
    after = server.memory_kib()

    assert "trailer" in problem_of(answered.data, 431)["detail"]
    assert answered.closed
    bound = 16 * 1024  # KiB; without the count, httptools buffered it: ~130 MiB at the peak
    assert after["VmHWM"] <= max(before["VmHWM"], before["VmRSS"] + bound), (before, after)


# --- bodies ---------------------------------------------------------------------------------


def test_a_json_body_over_its_limit_is_a_413(server: Served) -> None:
    body = json.dumps({"text": "x" * 100_000}).encode()

    answered = exchange(server, [post("/json", body)], until_close=False)

    assert problem_of(answered.data, 413)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_any_body_over_the_server_limit_is_a_413_and_the_connection_closes(
    server: Served, chunked: bool
) -> None:
    # /raw reads the whole body: the server's limit is what stops it.
    size = 4 * MIB
    if chunked:
        head = b"POST /raw HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunks = [head] + [b"%x\r\n" % MIB + ONE_MIB_OF_A + b"\r\n"] * 4 + [b"0\r\n\r\n"]
    else:
        head = b"POST /raw HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size
        chunks = [head] + [ONE_MIB_OF_A] * 4

    answered = exchange(server, chunks)

    problem = problem_of(answered.data, 413)
    assert "256 KiB" in problem["detail"]
    assert answered.closed


def test_an_upload_answered_before_its_body_is_drained_under_the_ordinary_limit(
    server: Served,
) -> None:
    # A client without a token gets its 401 at once; the upload's limits (1 GiB, an hour)
    # are for a body the app reads, not for one nobody will.
    head = b"POST /api/imports HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (64 * MIB)

    answered = exchange(server, [head] + [ONE_MIB_OF_A] * 4)

    assert status_of(answered.data) == 401
    assert answered.closed


def test_a_body_within_the_server_limit_is_read(server: Served) -> None:
    body = b"b" * (200 * 1024)

    answered = exchange(server, [post("/raw", body)], until_close=False)

    assert status_of(answered.data) == 200
    assert json.loads(answered.data.partition(b"\r\n\r\n")[2]) == {"bytes": len(body)}


@pytest.mark.parametrize(
    ("length", "status"),
    [
        pytest.param(b"9" * 5000, 400, id="5000-nines"),
        pytest.param(b"0" * 4992 + b"99999999", 413, id="5000-digits-with-leading-zeros"),
        pytest.param(b"0" * 4999 + b"2", 200, id="leading-zeros-of-a-small-length"),
    ],
)
def test_a_content_length_of_5000_digits_is_never_a_500(
    server: Served, length: bytes, status: int
) -> None:
    head = (
        b"POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + length + b"\r\n\r\n{}"
    )

    answered = exchange(server, [head], until_close=False)

    if status == 200:
        assert status_of(answered.data) == 200
    else:
        assert problem_of(answered.data, status)


def test_a_client_leaving_mid_body_is_a_quiet_debug_line(server: Served) -> None:
    offset = len(server.log())
    head = (
        b"POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"text": "'
    )

    exchange(server, [head], hang_up=True)

    log = server.wait_for_log("the client left before sending all of the body", offset)
    assert "ERROR" not in log and "Traceback" not in log and " 500" not in log, log


def test_beyond_the_connection_cap_requests_get_503(server: Served) -> None:
    idle = [
        socket.create_connection(("127.0.0.1", server.port))
        for _ in range(server.limits.max_connections)
    ]
    deadline = time.monotonic() + GUARD
    try:
        # The server accepts the idle connections in its own time: ask until it has.
        while (answer := exchange(server, [get()], until_close=False)).data and status_of(
            answer.data
        ) == 200:
            assert time.monotonic() < deadline, "no 503 with the connections all taken"
            time.sleep(0.05)
        assert status_of(answer.data) == 503
    finally:
        for conn in idle:
            conn.close()
    while status_of(exchange(server, [get()], until_close=False).data) != 200:
        assert time.monotonic() < deadline, "the cap never freed up"
        time.sleep(0.05)


# --- slow clients ---------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed(impatient: Served) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=GUARD) as conn:
        assert conn.recv(1024) == b""


def test_a_slowloris_that_never_finishes_its_headers_is_closed(impatient: Served) -> None:
    """A header line every 50 ms: never too many bytes or lines, never a complete head."""
    ran_out: list[bool] = []

    def drip() -> Iterator[bytes]:
        yield b"GET / HTTP/1.1\r\nHost: t\r\n"
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            time.sleep(0.05)
            yield b"X-Drip: 1\r\n"
        ran_out.append(True)

    answered = exchange(impatient, drip())

    assert answered.closed
    assert "headers" in problem_of(answered.data, 408)["detail"]
    assert not ran_out, "the drip ran to its guard: the server never closed"


def test_a_body_that_stops_arriving_is_closed(impatient: Served) -> None:
    offset = len(impatient.log())
    head = (
        b"POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"text": "'
    )

    answered = exchange(impatient, [head])

    assert answered.closed
    assert "body" in problem_of(answered.data, 408)["detail"]
    log = impatient.wait_for_log("the client left before sending all of the body", offset)
    assert "ERROR" not in log and "Traceback" not in log, log


def test_an_idle_keep_alive_connection_is_closed(impatient: Served) -> None:
    answered = exchange(impatient, [get()])

    assert status_of(answered.data) == 200
    assert answered.closed


def test_the_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import Settings

    monkeypatch.setenv("ENCURTA_SERVER__MAX_HEADER_BYTES", "8192")
    monkeypatch.setenv("ENCURTA_SERVER__HEADER_TIMEOUT_SECONDS", "2.5")

    server = Settings().server
    assert (server.max_header_bytes, server.header_timeout_seconds) == (8192, 2.5)


# --- `encurta serve` applies them -----------------------------------------------------------

ENCURTA = Path(sys.executable).parent / "encurta"
REGISTER = b"POST /api/auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def encurta() -> Iterator[Served]:
    root = traversable_tmp("encurta-test-limits-")
    limits = ServerSettings(header_timeout_seconds=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
    env.update(
        ENCURTA_DATA_DIR=str(root / "data"),
        ENCURTA_LOG_LEVEL="debug",
        ENCURTA_EMBEDDED__DURABLE="false",
        ENCURTA_SERVER__HEADER_TIMEOUT_SECONDS=str(limits.header_timeout_seconds),
    )
    port = free_port()
    command = [str(ENCURTA), "serve", "--port", str(port)]
    try:
        yield from run(command, port, root / "serve.log", limits, env=env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_encurta_serve_refuses_an_8_mib_header_and_goes_on_serving(encurta: Served) -> None:
    answered = exchange(encurta, big_header(8))

    assert problem_of(answered.data, 431)
    assert answered.closed
    assert status_of(exchange(encurta, [get("/readyz")], until_close=False).data) == 200


def test_encurta_serve_closes_a_connection_silent_past_its_setting(encurta: Served) -> None:
    with socket.create_connection(("127.0.0.1", encurta.port), timeout=GUARD) as conn:
        assert conn.recv(1024) == b""


@pytest.mark.parametrize(
    ("length", "status"),
    [
        pytest.param(b"9" * 5000, 400, id="5000-nines"),
        pytest.param(b"0" * 4992 + b"99999999", 413, id="5000-digits-with-leading-zeros"),
    ],
)
def test_encurta_serve_answers_a_5000_digit_content_length_with_a_4xx(
    encurta: Served, length: bytes, status: int
) -> None:
    head = REGISTER + b"Content-Length: " + length + b"\r\n\r\n{}"

    answered = exchange(encurta, [head], until_close=False)

    assert problem_of(answered.data, status)


def test_encurta_serve_logs_a_client_leaving_mid_body_quietly(encurta: Served) -> None:
    offset = len(encurta.log())

    exchange(encurta, [REGISTER + b'Content-Length: 1000\r\n\r\n{"email": "'], hang_up=True)

    log = encurta.wait_for_log("the client left before sending all of the body", offset)
    assert "ERROR" not in log and "Traceback" not in log and " 500" not in log, log
