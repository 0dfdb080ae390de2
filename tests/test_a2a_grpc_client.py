"""Our A2A client over gRPC (``grpc_client.GrpcTransport`` behind ``A2AClient``) against our
real gRPC server (``serve_grpc`` over ``A2AService`` with the echo executor, bearer auth):
send, stream, get, list, cancel, subscribe, push config CRUD, typed errors, auth, deadlines,
card-driven transport choice (a gRPC-only card served over HTTP), and ``codetether a2a``
through ``cli.a2a_cmd.run``."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from codetether.a2a.client import A2AClient, A2AClientError

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "grpc-client-token"
WAIT = 30.0  # bound on any one call; never reached when things work


@pytest.fixture(scope="session", autouse=True)
def stubs():
    """Generate the stubs (scripts/gen_proto.py) unless they are current."""
    script = ROOT / "scripts" / "gen_proto.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    from codetether.a2a.grpc_binding import load_stubs

    return load_stubs()


class Peer:
    """Our server: store, echo executor, service, gRPC on a free loopback port."""

    def __init__(self, tmp_path: Path, max_workers: int = 16) -> None:
        from codetether.a2a.executors import EchoExecutor
        from codetether.a2a.grpc_binding import serve_grpc
        from codetether.a2a.push import PushSender
        from codetether.a2a.service import A2AService, CardInfo
        from codetether.a2a.store import TaskStore
        from codetether.core.httpserver import TokenAuth

        self.hold = threading.Event()
        self.store = TaskStore(tmp_path / "tasks.db")
        self.service = A2AService(self.store, EchoExecutor(hold=self.hold), CardInfo(),
                                  PushSender(allow_private=True))
        self.server = serve_grpc(self.service, "127.0.0.1", 0, TokenAuth({TOKEN: "tester"}),
                                 base_url="http://127.0.0.1:1", max_workers=max_workers)
        self.address = self.server.address

    def client(self, token: str | None = TOKEN, timeout: float = WAIT,
               dialect: str = "auto") -> A2AClient:
        return A2AClient.for_grpc(self.address, token, timeout=timeout, dialect=dialect)

    def close(self) -> None:
        self.hold.set()
        self.service.shutdown()
        self.server.stop(0)
        self.store.close()


@pytest.fixture
def peer(tmp_path):
    server = Peer(tmp_path)
    yield server
    server.close()


@pytest.fixture(params=["1.0", "0.3"])
def client(request, peer):
    """Both gRPC services: lf.a2a.v1.A2AService and a2a.v1.A2AService (v0.3)."""
    with peer.client(dialect=request.param) as c:
        yield c


@pytest.fixture
def v1_client(peer):
    with peer.client() as c:
        yield c


def msg(text: str, message_id: str, **fields) -> dict:
    return {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}], **fields}


def kind(event: dict) -> str:
    [name] = [k for k in ("task", "message", "statusUpdate", "artifactUpdate") if k in event]
    return name


def state(obj: dict) -> str:
    return (obj.get("status") or {}).get("state", "")


# -- operations --------------------------------------------------------------------------------

def test_send_get_and_history(client):
    task = client.send("hello grpc", metadata={"trace": "t1"})["task"]
    assert state(task) == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "hello grpc"}]
    assert task["status"]["message"]["parts"][0]["text"] == "Echo: hello grpc"
    assert task["history"][0]["role"] == "ROLE_USER"
    fetched = client.get(task["id"])
    assert (fetched["id"], fetched["contextId"]) == (task["id"], task["contextId"])
    assert fetched["history"][0]["messageId"] == task["history"][0]["messageId"]
    trimmed = client.get(task["id"], history_length=0)
    if client.dialect == "1.0":  # v0.3's proto cannot tell 0 from "not set"
        assert "history" not in trimmed
    assert client.get(task["id"], history_length=1)["history"] == task["history"][-1:]
    assert client.binding == "grpc" and client.endpoint == client.url


def test_direct_message_reply_and_rich_parts(client):
    reply = client.send(msg("hi", "tck-message-response-1"))
    assert set(reply) == {"message"}
    assert reply["message"]["parts"] == [{"text": "Direct message response"}]
    parts = [{"text": "t"}, {"data": {"key": "value", "count": 42}},
             {"url": "https://example.com/a.txt", "filename": "a.txt"},
             {"raw": "AAFieXRlcw==", "filename": "b.bin", "mediaType": "application/x-test"}]
    echoed = client.send({"messageId": "m-parts", "role": "ROLE_USER", "parts": parts})
    assert echoed["task"]["artifacts"][0]["parts"] == parts


def test_stream_chunked_artifact_in_order(client):
    events = list(client.stream(msg("x", "tck-stream-artifact-chunked-1")))
    assert [kind(e) for e in events] == ["task", "statusUpdate", "artifactUpdate",
                                         "artifactUpdate", "statusUpdate"]
    first, second = events[2]["artifactUpdate"], events[3]["artifactUpdate"]
    assert first["artifact"]["parts"] == [{"text": "chunk-1 "}] and first["append"] is True
    assert "lastChunk" not in first  # proto3 JSON leaves out false
    assert second["artifact"]["parts"] == [{"text": "chunk-2"}] and second["lastChunk"] is True
    assert first["artifact"]["artifactId"] == second["artifact"]["artifactId"]
    assert state(events[-1]["statusUpdate"]) == "TASK_STATE_COMPLETED"


def test_input_required_stream_ends_then_answer(client):
    events = list(client.stream(msg("go", "tck-input-required-1")))
    asked = events[-1]["statusUpdate"]
    assert state(asked) == "TASK_STATE_INPUT_REQUIRED"
    done = client.send("blue", task_id=asked["taskId"], context_id=asked["contextId"])["task"]
    assert state(done) == "TASK_STATE_COMPLETED"
    assert done["status"]["message"]["parts"][0]["text"] == "Received: blue"


def test_list_tasks_filters_and_pages(v1_client):
    client = v1_client
    ids = {client.send(f"n{i}", context_id="ctx-list")["task"]["id"] for i in range(3)}
    client.send("elsewhere")
    everything = client.list_tasks(context_id="ctx-list")
    assert everything["totalSize"] == 3 and {t["id"] for t in everything["tasks"]} == ids
    page = client.list_tasks(context_id="ctx-list", page_size=2)
    rest = client.list_tasks(context_id="ctx-list", page_size=2,
                             page_token=page["nextPageToken"])
    assert len(page["tasks"]) == 2 and page["nextPageToken"]
    assert len(rest["tasks"]) == 1 and rest["nextPageToken"] == ""
    assert {t["id"] for t in page["tasks"] + rest["tasks"]} == ids
    assert client.list_tasks(context_id="ctx-none")["tasks"] == []
    completed = client.list_tasks(status="completed", context_id="ctx-list")
    assert completed["totalSize"] == 3


def test_subscribe_cancel_and_typed_errors(client):
    task = client.send(msg("x", "echo-hold-1"), blocking=False)["task"]
    stream = client.subscribe(task["id"])
    opening = next(stream)
    assert opening["task"]["id"] == task["id"]
    canceled = client.cancel(task["id"])
    assert canceled["id"] == task["id"] and state(canceled) == "TASK_STATE_CANCELED"
    rest = list(stream)
    assert state(rest[-1]["statusUpdate"]) == "TASK_STATE_CANCELED"
    with pytest.raises(A2AClientError) as again:
        client.cancel(task["id"])
    assert again.value.code == -32002 and again.value.reason == "TASK_NOT_CANCELABLE"
    assert "still running" in (again.value.hint or "")
    with pytest.raises(A2AClientError) as ended:
        next(client.subscribe(task["id"]))
    assert ended.value.code == -32004


def test_push_config_crud(client):
    task_id = client.send("x")["task"]["id"]
    created = client.set_push_config(task_id, "http://127.0.0.1:9/hook", token="tok-1",
                                     authentication={"scheme": "Bearer", "credentials": "c"})
    assert created["id"] and created["taskId"] == task_id
    got = client.get_push_config(task_id, created["id"])
    assert (got["url"], got["token"], got["authentication"]["scheme"]) == (
        "http://127.0.0.1:9/hook", "tok-1", "Bearer")
    named = client.set_push_config(task_id, "http://127.0.0.1:9/other", config_id="cfg-2")
    assert named["id"] == "cfg-2"
    assert sorted(c["id"] for c in client.list_push_configs(task_id)) == sorted(
        [created["id"], "cfg-2"])
    assert client.delete_push_config(task_id, created["id"]) is None
    assert [c["id"] for c in client.list_push_configs(task_id)] == ["cfg-2"]
    with pytest.raises(A2AClientError) as gone:
        client.get_push_config(task_id, created["id"])
    assert gone.value.code == -32001


def test_task_not_found_maps_to_its_code(client):
    with pytest.raises(A2AClientError) as caught:
        client.get("no-such-task")
    error = caught.value
    assert error.code == -32001 and error.reason == "TASK_NOT_FOUND"
    assert "no-such-task" in error.message
    assert error.data[0]["domain"] == "a2a-protocol.org"
    assert error.data[0]["metadata"]["taskId"] == "no-such-task"
    assert error.hint and "task id" in error.hint
    with pytest.raises(A2AClientError) as invalid:
        client.send({"messageId": "m-empty", "role": "ROLE_USER", "parts": []})
    assert invalid.value.code == -32602
    assert not invalid.value.message.startswith("InvalidParamsError")  # v0.3's prefix


def test_extended_card_over_grpc(v1_client, peer):
    card = v1_client.card()
    assert card["name"] == "CodeTether" and "shell" in [s["id"] for s in card["skills"]]
    assert {"url": peer.address, "protocolBinding": "GRPC", "protocolVersion": "1.0"} in \
        card["supportedInterfaces"]
    assert v1_client.raw_card["name"] == "CodeTether"
    assert v1_client.extended_card()["name"] == "CodeTether"


def test_v03_card_and_what_v03_lacks(peer):
    with peer.client(dialect="0.3") as c:
        card = c.card()
        assert card["name"] == "CodeTether" and "shell" in [s["id"] for s in card["skills"]]
        assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == \
            "Bearer"
        assert "GRPC" in [i["protocolBinding"] for i in card["supportedInterfaces"]]
        with pytest.raises(A2AClientError) as caught:
            c.list_tasks()
        assert caught.value.code == -32004 and "0.3" in caught.value.message


# -- failures that a person must understand ---------------------------------------------------

@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_wrong_or_missing_token_is_a_clear_error(peer, token):
    with peer.client(token) as c, pytest.raises(A2AClientError) as caught:
        c.get("x")
    error = caught.value
    assert error.code == 401
    assert "refused" in error.message and "bearer token" in error.message
    assert "--token" in error.hint and "CODETETHER_A2A_TOKEN" in error.hint
    with peer.client(token) as c, pytest.raises(A2AClientError) as streamed:
        list(c.stream("x"))
    assert streamed.value.code == 401


def test_unreachable_peer_says_so():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with A2AClient.for_grpc(f"127.0.0.1:{port}", TOKEN, timeout=WAIT) as c, \
            pytest.raises(A2AClientError) as caught:
        c.get("x")
    assert caught.value.code is None
    assert f"cannot reach A2A agent at 127.0.0.1:{port}" in caught.value.message
    assert "--grpc-port" in caught.value.hint


def test_deadline_applies_to_unary_calls(peer):
    with peer.client(timeout=0.5) as c, pytest.raises(A2AClientError) as caught:
        c.send(msg("x", "echo-hold-deadline"))  # blocks until the peer's hold is set
    assert "did not answer within 0.5s" in caught.value.message
    assert "--timeout" in caught.value.hint


def test_bad_targets_and_transports():
    for bad in ("127.0.0.1", "grpc://", "host:port", "grpc://h:x"):
        with pytest.raises(A2AClientError) as caught:
            A2AClient.for_grpc(bad)
        assert "not a gRPC address" in caught.value.message
    with pytest.raises(A2AClientError) as unknown:
        A2AClient("http://127.0.0.1:1", transport="carrier-pigeon")
    assert "jsonrpc or grpc" in unknown.value.hint
    with pytest.raises(A2AClientError) as bare:
        A2AClient("127.0.0.1:50051")  # auto: a bare host:port is not guessed
    assert "grpc://host:port" in bare.value.hint


def test_abandoned_streams_free_the_server(tmp_path):
    """A consumer that stops iterating cancels its call: with two server workers, three
    abandoned subscriptions to a running task must not starve the next call."""
    from codetether.a2a.grpc_client import GrpcTransport

    server = Peer(tmp_path, max_workers=2)
    transport = GrpcTransport(server.address, TOKEN, timeout=WAIT, stream_timeout=WAIT)
    try:
        task = transport.call("send", {"message": msg("x", "echo-hold-abandon"),
                                       "configuration": {"returnImmediately": True}})["task"]
        for _ in range(3):
            stream = transport.stream("subscribe", {"id": task["id"]})
            assert next(stream)["task"]["id"] == task["id"]
            stream.close()
        assert transport.call("get", {"id": task["id"]})["id"] == task["id"]
    finally:
        transport.close()
        server.close()


# -- choosing the transport from the card -----------------------------------------------------

class CardServer:
    """An HTTP server that serves only an agent card (no A2A endpoint behind it)."""

    def __init__(self, card: dict) -> None:
        from codetether.core.httpserver import App, Response

        app = App()
        app.add("GET", "/.well-known/agent-card.json", lambda request: Response.json(card),
                public=True)
        self.http = app.serve("127.0.0.1", 0).start()
        self.url = self.http.url.rstrip("/")

    def stop(self) -> None:
        self.http.stop()


def card_with(peer: Peer, *interfaces: dict) -> dict:
    card = peer.service.agent_card("http://127.0.0.1:1", peer.address)
    card["supportedInterfaces"] = list(interfaces)
    return card


def grpc_interface(peer: Peer, version: str = "1.0") -> dict:
    return {"url": peer.address, "protocolBinding": "GRPC", "protocolVersion": version}


DEAD_JSONRPC = {"url": "http://127.0.0.1:1/a2a", "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0"}


def test_auto_picks_grpc_from_a_grpc_only_card(peer):
    http = CardServer(card_with(peer, grpc_interface(peer)))
    try:
        with A2AClient(http.url, TOKEN, timeout=WAIT) as c:
            assert c.card()["supportedInterfaces"][0]["protocolBinding"] == "GRPC"
            assert (c.binding, c.endpoint, c.dialect) == ("grpc", peer.address, "1.0")
            task = c.send("via the card")["task"]
            assert task["artifacts"][0]["parts"] == [{"text": "via the card"}]
            events = list(c.stream(msg("x", "tck-stream-artifact-chunked-card")))
            assert state(events[-1]["statusUpdate"]) == "TASK_STATE_COMPLETED"
    finally:
        http.stop()


def test_auto_prefers_jsonrpc_and_grpc_can_be_forced(peer):
    http = CardServer(card_with(peer, DEAD_JSONRPC, grpc_interface(peer)))
    try:
        auto = A2AClient(http.url, TOKEN, timeout=WAIT)
        assert (auto.binding, auto.endpoint) == ("jsonrpc", DEAD_JSONRPC["url"])
        with A2AClient(http.url, TOKEN, timeout=WAIT, transport="grpc") as forced:
            assert forced.binding == "grpc"
            assert state(forced.send("forced")["task"]) == "TASK_STATE_COMPLETED"
        with pytest.raises(A2AClientError) as refused:
            A2AClient(http.url, TOKEN, transport="jsonrpc").send("x")  # the dead endpoint
        assert "cannot reach" in refused.value.message
    finally:
        http.stop()


def test_grpc_interface_versions_pick_the_dialect(peer):
    http = CardServer(card_with(peer, grpc_interface(peer, "0.3"), grpc_interface(peer)))
    try:
        assert A2AClient(http.url, TOKEN).dialect == "1.0"
        with A2AClient(http.url, TOKEN, dialect="0.3", timeout=WAIT) as legacy:
            assert (legacy.binding, legacy.dialect) == ("grpc", "0.3")
            task = legacy.send("old school")["task"]
            assert task["artifacts"][0]["parts"] == [{"text": "old school"}]
    finally:
        http.stop()


def test_card_without_a_usable_interface(peer):
    http = CardServer(card_with(peer, {"url": "http://x", "protocolBinding": "HTTP+JSON",
                                       "protocolVersion": "1.0"}))
    try:
        with pytest.raises(A2AClientError) as caught:
            A2AClient(http.url, TOKEN).send("x")
        assert "no JSON-RPC or gRPC interface" in caught.value.message
        assert "HTTP+JSON v1.0" in caught.value.hint
    finally:
        http.stop()


# -- codetether a2a ---------------------------------------------------------------------------

def cli(url: str, action: str, capsys, transport: str | None = "auto", **fields) -> tuple:
    from codetether.cli import a2a_cmd

    values = {"a2a_action": action, "url": url, "token": TOKEN, "dialect": "auto",
              "timeout": WAIT, "json": False, "message": None, "task_id": None,
              "stream": False, "context_id": None, **fields}
    args = argparse.Namespace(**values)
    if transport is not None:
        args.transport = transport
    code = a2a_cmd.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_card_send_get_cancel_over_grpc(peer, capsys):
    code, out, _ = cli(peer.address, "card", capsys, transport="grpc")
    assert code == 0 and out.startswith("CodeTether")
    assert any(line.split()[1:] == ["GRPC", "v1.0", peer.address]
               for line in out.splitlines() if "interface" in line)

    code, out, err = cli(f"grpc://{peer.address}", "send", capsys, message="hi cli")
    assert code == 0 and out == "hi cli\n" and "completed" in err

    code, out, _ = cli(f"grpc://{peer.address}", "send", capsys, message="chunks",
                       stream=True, json=True)
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and kind(events[0]) == "task"
    task_id = events[0]["task"]["id"]

    code, out, _ = cli(peer.address, "get", capsys, transport="grpc", task_id=task_id,
                       json=True)
    assert code == 0 and json.loads(out)["task"]["id"] == task_id

    held = peer.service.send_message({"message": msg("x", "echo-hold-cli"),
                                      "configuration": {"returnImmediately": True}},
                                     "tester")["task"]
    code, out, _ = cli(f"grpc://{peer.address}", "cancel", capsys, task_id=held["id"])
    assert code == 0 and out == f"{held['id']} canceled\n"

    with pytest.raises(A2AClientError) as caught:
        cli(f"grpc://{peer.address}", "get", capsys, transport=None, task_id="nope")
    assert caught.value.code == -32001


def test_cli_transport_picks_grpc_from_the_card(peer, capsys):
    http = CardServer(card_with(peer, grpc_interface(peer)))
    try:
        code, out, _ = cli(http.url, "send", capsys, message="card said grpc")
        assert code == 0 and out == "card said grpc\n"
    finally:
        http.stop()


def test_real_cli_against_a_grpc_only_peer(peer):
    from tests.cli import run_cli

    env = {"CODETETHER_A2A_TOKEN": TOKEN}
    sent = run_cli("a2a", "send", f"grpc://{peer.address}", "through the binary", "--json",
                   env=env, timeout=WAIT)
    assert sent.returncode == 0, sent.stderr
    task = json.loads(sent.stdout)["task"]
    assert task["artifacts"][0]["parts"] == [{"text": "through the binary"}]
    refused = run_cli("a2a", "get", f"grpc://{peer.address}", task["id"], "--token", "nope",
                      timeout=WAIT)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "bearer token" in refused.stderr and refused.stdout == ""
