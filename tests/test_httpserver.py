"""The HTTP kernel (core/httpserver.py) on a real loopback server: routing, errors, limits,
chunked bodies, SSE streaming and bearer auth."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from codetether.core import httpserver
from codetether.core.httpserver import App, HttpError, Request, Response, TokenAuth
from codetether.core.sse import encode_sse, parse_sse

TOKEN = "s3cret-token-for-tests"


def _make_app(**kwargs) -> tuple[App, dict]:
    seen: dict = {"requests": [], "stream_closed": threading.Event(),
                  "first_sent": threading.Event(), "release": threading.Event(),
                  "cond": threading.Condition()}

    def on_request(request: Request, status: int, seconds: float) -> None:
        with seen["cond"]:
            seen["requests"].append((request.method, request.path, status, request.principal))
            seen["cond"].notify_all()

    app = App(TokenAuth({TOKEN: "tester"}), on_request=on_request, **kwargs)
    app.add("GET", "/health", lambda r: Response.json({"ok": True}), public=True)
    app.add("GET", "/tasks/{id}", lambda r: Response.json({"get": r.params["id"]}))
    app.add("POST", "/tasks/{id}:cancel", lambda r: Response.json({"cancel": r.params["id"]}))
    app.add("GET", "/files/{rest:path}", lambda r: Response.json({"rest": r.params["rest"]}))
    app.add("POST", "/echo", lambda r: Response.json({"len": len(r.body), "json": r.json(),
                                                     "who": r.principal}))
    app.add("POST", "/raw", lambda r: Response.json({"len": len(r.body),
                                                    "head": r.body[:16].decode()}))

    def boom(_r: Request) -> Response:
        raise RuntimeError("internal detail that must not leak")

    def teapot(_r: Request) -> Response:
        raise HttpError(418, "short and stout", headers={"X-Why": "tea"})

    app.add("GET", "/boom", boom)
    app.add("GET", "/teapot", teapot)

    def events(_r: Request) -> Response:
        def gen():
            try:
                yield encode_sse(json.dumps({"n": 0}), event="tick", id="0")
                seen["first_sent"].set()
                seen["release"].wait(5)
                n = 1
                while not app.stopping.is_set() and n < 10_000:
                    yield encode_sse(json.dumps({"n": n}), event="tick", id=str(n))
                    n += 1
                    if seen.get("finite") and n == 3:
                        return
                    app.stopping.wait(0.01)
            finally:
                seen["stream_closed"].set()
        return Response.sse(gen())

    app.add("GET", "/events", events)
    return app, seen


@pytest.fixture
def served():
    app, seen = _make_app(max_body=1024)
    server = app.serve("127.0.0.1", 0).start()
    try:
        yield server, seen
    finally:
        server.stop()


def _request(server, method: str, path: str, body: bytes | None = None,
             token: str | None = TOKEN, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=all_headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def _hooked(seen: dict, count: int) -> list:
    """The requests the on_request hook saw, once it has seen ``count`` (it runs after the
    response is written, so the client can be faster)."""
    with seen["cond"]:
        assert seen["cond"].wait_for(lambda: len(seen["requests"]) >= count, timeout=5)
        return list(seen["requests"])


def _json(server, method, path, **kw):
    status, headers, data = _request(server, method, path, **kw)
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    return status, json.loads(data)


def test_routing_with_colon_verbs_and_path_params(served):
    server, _ = served
    assert _json(server, "GET", "/tasks/abc") == (200, {"get": "abc"})
    assert _json(server, "POST", "/tasks/abc:cancel") == (200, {"cancel": "abc"})
    assert _json(server, "GET", "/tasks/a%20b") == (200, {"get": "a b"})
    assert _json(server, "GET", "/files/a/b/c.txt?x=1") == (200, {"rest": "a/b/c.txt"})


def test_404_vs_405(served):
    server, _ = served
    status, body = _json(server, "GET", "/nowhere")
    assert status == 404 and "nowhere" in body["error"]
    status, body = _json(server, "DELETE", "/tasks/abc")
    assert status == 405 and body == {"error": "method not allowed"}
    # the colon verb is its own path: GET on it is 405, a different verb segment is 404
    assert _json(server, "GET", "/tasks/abc:cancel")[0] == 405


def test_json_errors_and_the_server_keeps_serving(served):
    server, _ = served
    status, body = _json(server, "POST", "/echo", body=b"{not json")
    assert status == 400 and body["error"].startswith("malformed JSON")
    status, body = _json(server, "POST", "/echo", body=b"")
    assert status == 400 and "must be JSON" in body["error"]
    status, body = _json(server, "GET", "/boom")
    assert status == 500 and body == {"error": "internal error"}
    status, headers, data = _request(server, "GET", "/teapot")
    assert status == 418 and headers["X-Why"] == "tea"
    assert json.loads(data) == {"error": "short and stout"}
    assert _json(server, "POST", "/echo", body=b'{"a": 1}') == (
        200, {"len": 8, "json": {"a": 1}, "who": "tester"})


def _raw(server, payload: bytes, read_until_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
            if not read_until_close and b"\r\n\r\n" in b"".join(chunks):
                break
    return b"".join(chunks)


def test_huge_body_is_refused_without_reading_it(served):
    server, seen = served
    # Announce 1 GB and send none of it: reading it would block until the timeout.
    head = (f"POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n").encode()
    reply = _raw(server, head)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"1024-byte limit" in reply
    assert _hooked(seen, 1)[-1] == ("POST", "/echo", 413, None)


def test_chunked_request_body(served):
    server, _ = served
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n"
                    for p in (b"hello ", b"chunked ", b"world")) + b"0\r\n\r\n"
    head = (f"POST /raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    reply = _raw(server, head + body)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {"len": 19, "head": "hello chunked wo"}


def test_chunked_body_over_the_limit_is_413(served):
    server, _ = served
    big = b"x" * 2000
    head = (f"POST /raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    reply = _raw(server, head + f"{len(big):x}\r\n".encode() + big + b"\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413 ")


def test_bad_chunked_encoding_is_400(served):
    server, _ = served
    head = (f"POST /raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n").encode()
    assert _raw(server, head).startswith(b"HTTP/1.1 400 ")


def test_keep_alive_serves_several_requests_on_one_connection(served):
    server, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for n in range(3):
        conn.request("GET", f"/tasks/t{n}", headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        assert json.loads(resp.read()) == {"get": f"t{n}"}
    conn.close()


def test_sse_streams_events_as_they_are_produced(served):
    server, seen = served
    seen["finite"] = True
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/events", headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/event-stream"
    assert resp.getheader("Transfer-Encoding") == "chunked"
    events = parse_sse(iter(resp.readline, b""))
    first = next(events)
    # the first event arrived while the handler is still held back: it was not buffered
    assert not seen["release"].is_set()
    assert (first.event, first.id, json.loads(first.data)) == ("tick", "0", {"n": 0})
    seen["release"].set()
    rest = [json.loads(e.data)["n"] for e in events]
    assert rest == [1, 2]
    assert seen["stream_closed"].wait(5)
    conn.close()


def test_sse_client_disconnect_releases_the_stream(served):
    server, seen = served
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
                 .encode())
    assert seen["first_sent"].wait(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    sock.close()
    seen["release"].set()  # the handler now writes into a closed socket and must notice
    assert seen["stream_closed"].wait(5), "generator was not closed after the client left"
    assert _json(server, "GET", "/health", token=None) == (200, {"ok": True})


def test_stopping_the_server_ends_open_streams():
    app, seen = _make_app()
    server = app.serve("127.0.0.1", 0).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/events", headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    seen["release"].set()
    events = parse_sse(iter(resp.readline, b""))
    next(events)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    assert seen["stream_closed"].wait(5)
    list(events)  # the stream ends cleanly with the terminating chunk
    stopper.join(5)
    assert not stopper.is_alive()
    conn.close()


def test_auth_is_required_except_on_public_routes(served):
    server, seen = served
    assert _json(server, "GET", "/health", token=None) == (200, {"ok": True})
    for token in (None, "wrong", TOKEN + "x", TOKEN[:-1], ""):
        status, headers, data = _request(server, "GET", "/tasks/1", token=token)
        assert status == 401, token
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert json.loads(data) == {"error": "missing or invalid bearer token"}
    status, _, _ = _request(server, "GET", "/tasks/1", token=None,
                            headers={"Authorization": f"Basic {TOKEN}"})
    assert status == 401
    status, _, _ = _request(server, "GET", "/tasks/1", token=None,
                            headers={"Authorization": f"bearer {TOKEN}"})
    assert status == 200  # the scheme is case-insensitive
    # unknown paths do not reveal themselves differently to anonymous callers than 404
    assert _request(server, "GET", "/nowhere", token=None)[0] == 404
    principals = {(p, s) for _, path, s, p in _hooked(seen, 9) if path == "/tasks/1"}
    assert (None, 401) in principals and ("tester", 200) in principals


def test_token_compare_is_constant_time(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = httpserver.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(httpserver.hmac, "compare_digest", spy)
    auth = TokenAuth({"first-token-aaaaaaaa": "one", "second-token-bbbbbbb": "two"})

    def req(value: str) -> Request:
        return Request("GET", "/", {}, {"authorization": f"Bearer {value}"}, b"", "127.0.0.1")

    assert auth.principal(req("first-token-aaaaaaaa")) == "one"
    assert len(calls) == 2, "every token is compared, even after a match"
    calls.clear()
    assert auth.principal(req("nope")) is None
    assert len(calls) == 2
    assert auth.principal(req("")) is None
    assert TokenAuth({"": "nobody"}).principal(req("")) is None  # an empty token never matches


def test_on_request_sees_every_request_with_status(served):
    server, seen = served
    _request(server, "GET", "/tasks/zz")
    _request(server, "GET", "/boom")
    _request(server, "GET", "/tasks/zz", token="bad")
    assert [(m, p, s) for m, p, s, _ in _hooked(seen, 3)[-3:]] == [
        ("GET", "/tasks/zz", 200), ("GET", "/boom", 500), ("GET", "/tasks/zz", 401)]
