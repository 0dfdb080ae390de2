"""The A2A task service without a wire: echo backend conventions, fan-out to subscribers,
cancel, push configs, restart survival, and the real agent loop against a scripted model."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from codetether.a2a.errors import (
    InvalidParams,
    PushNotificationNotSupported,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
)
from codetether.a2a.executors import AgentExecutor, EchoExecutor
from codetether.a2a.push import PushSender
from codetether.a2a.service import A2AService, CardInfo
from codetether.a2a.store import TaskStore
from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn


def msg(message_id: str, text: str = "hello", **extra) -> dict:
    return {"message": {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}],
                        **extra}}


@pytest.fixture
def hold():
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def service(tmp_path, hold):
    push = PushSender(allow_private=True, backoff=0.01)
    svc = A2AService(TaskStore(tmp_path / "tasks.db"), EchoExecutor(hold=hold), CardInfo(), push)
    yield svc
    hold.set()
    svc.shutdown()


def state(task: dict) -> str:
    return task["status"]["state"]


def test_send_echo_completes_with_artifact_and_history(service):
    task = service.send_message(msg("m-1", "ping"), "tester")["task"]
    assert state(task) == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "ping"}]
    assert task["status"]["message"]["parts"] == [{"text": "Echo: ping"}]
    assert [m["role"] for m in task["history"]] == ["ROLE_USER", "ROLE_AGENT"]
    assert service.get_task(task["id"], history_length=1)["history"][0]["role"] == "ROLE_AGENT"
    assert service.get_task(task["id"], history_length=0)["history"] == []


@pytest.mark.parametrize("prefix,expected_state,part", [
    ("tck-complete-task", "TASK_STATE_COMPLETED", None),
    ("tck-artifact-text", "TASK_STATE_COMPLETED", {"text": "Generated text content"}),
    ("tck-artifact-file-url", "TASK_STATE_COMPLETED",
     {"url": "https://example.com/output.txt", "filename": "output.txt",
      "mediaType": "text/plain"}),
    ("tck-artifact-file", "TASK_STATE_COMPLETED",
     {"raw": "ZmlsZSBvdXRwdXQ=", "filename": "output.txt", "mediaType": "text/plain"}),
    ("tck-artifact-data", "TASK_STATE_COMPLETED", {"data": {"key": "value", "count": 42}}),
    ("tck-reject-task", "TASK_STATE_REJECTED", None),
    ("tck-input-required", "TASK_STATE_INPUT_REQUIRED", None),
    ("tck-stream-002", "TASK_STATE_COMPLETED", None),
])
def test_tck_message_id_conventions(service, prefix, expected_state, part):
    task = service.send_message(msg(f"{prefix}-abc"), "tester")["task"]
    assert state(task) == expected_state
    if part is not None:
        assert task["artifacts"][0]["parts"] == [part]
    if prefix == "tck-complete-task":
        assert task["status"]["message"]["parts"] == [{"text": "Hello from TCK"}]


def test_tck_message_response_is_a_message_not_a_task(service):
    result = service.send_message(msg("tck-message-response-1"), "tester")
    assert list(result) == ["message"]
    assert result["message"]["parts"] == [{"text": "Direct message response"}]
    assert service.list_tasks({})["totalSize"] == 0
    streamed = list(service.stream_message(msg("tck-message-response-3"), "t"))
    assert len(streamed) == 1 and "message" in streamed[0]


def test_input_required_then_follow_up_completes(service):
    task = service.send_message(msg("tck-input-required-1"), "tester")["task"]
    assert state(task) == "TASK_STATE_INPUT_REQUIRED"
    follow = msg("tck-input-required-2", "more", taskId=task["id"], contextId=task["contextId"])
    done = service.send_message(follow, "tester")["task"]
    assert state(done) == "TASK_STATE_COMPLETED"
    assert done["status"]["message"]["parts"] == [{"text": "Received: more"}]
    with pytest.raises(UnsupportedOperation):  # a finished task takes no more messages
        service.send_message(msg("again", taskId=task["id"]), "tester")
    with pytest.raises(TaskNotFound):
        service.send_message(msg("x", taskId="no-such-task"), "tester")


def test_stream_chunked_artifact_in_order_and_merged(service):
    events = list(service.stream_message(msg("tck-stream-artifact-chunked-1"), "tester"))
    kinds = [next(iter(e)) for e in events]
    assert kinds == ["task", "statusUpdate", "artifactUpdate", "artifactUpdate", "statusUpdate"]
    chunks = [e["artifactUpdate"] for e in events if "artifactUpdate" in e]
    assert [c["artifact"]["parts"][0]["text"] for c in chunks] == ["chunk-1 ", "chunk-2"]
    assert chunks[1]["append"] and chunks[1]["lastChunk"] and not chunks[0].get("lastChunk")
    task = service.get_task(events[0]["task"]["id"])
    assert [p["text"] for p in task["artifacts"][0]["parts"]] == ["chunk-1 ", "chunk-2"]


def test_many_subscribers_get_every_event_in_order(service, hold):
    stream = service.stream_message(msg("echo-hold-1"), "tester")
    first = next(stream)
    task_id = first["task"]["id"]
    head = [next(stream), next(stream)]  # working, then the first chunk: now it is held
    assert "artifactUpdate" in head[1]
    subscribers = [service.subscribe(task_id) for _ in range(5)]
    snapshots = [next(s) for s in subscribers]
    for snap in snapshots:  # late subscribers start from the current task
        assert snap["task"]["artifacts"][0]["parts"] == [{"text": "part-1 "}]
    results: list[list[dict]] = [[] for _ in subscribers]

    def drain(i: int) -> None:
        results[i] = list(subscribers[i])

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(subscribers))]
    for t in threads:
        t.start()
    hold.set()
    rest = list(stream)
    for t in threads:
        t.join(10)
    assert all(r == rest for r in results)
    assert [next(iter(e)) for e in rest] == ["artifactUpdate", "statusUpdate"]
    assert state(rest[-1]["statusUpdate"]) == "TASK_STATE_COMPLETED"
    with pytest.raises(UnsupportedOperation):
        service.subscribe(task_id)


def test_cancel_running_task_and_errors(service):
    stream = service.stream_message(msg("echo-hold-2"), "tester")
    task_id = next(stream)["task"]["id"]
    next(stream)  # working
    canceled = service.cancel_task(task_id, "tester")
    assert state(canceled) == "TASK_STATE_CANCELED"
    remaining = list(stream)
    assert state(remaining[-1]["statusUpdate"]) == "TASK_STATE_CANCELED"
    with pytest.raises(TaskNotCancelable):
        service.cancel_task(task_id)
    with pytest.raises(TaskNotFound):
        service.cancel_task("nope")
    with pytest.raises(TaskNotFound):
        service.get_task("nope")
    with pytest.raises(TaskNotFound):
        service.subscribe("nope")


def test_cancel_input_required_task(service):
    task = service.send_message(msg("tck-input-required-9"), "tester")["task"]
    assert state(service.cancel_task(task["id"])) == "TASK_STATE_CANCELED"


def test_return_immediately_then_subscribe(service, hold):
    params = {**msg("echo-hold-3"), "configuration": {"returnImmediately": True}}
    task = service.send_message(params, "tester")["task"]
    assert state(task) == "TASK_STATE_SUBMITTED"
    sub = service.subscribe(task["id"])
    assert next(sub)["task"]["id"] == task["id"]
    hold.set()
    assert state(list(sub)[-1]["statusUpdate"]) == "TASK_STATE_COMPLETED"


def test_list_tasks_filters_and_pages(service):
    ids = [service.send_message(msg(f"m-{i}", contextId="ctx-a"), "t")["task"]["id"]
           for i in range(3)]
    service.send_message(msg("tck-reject-task-1", contextId="ctx-b"), "t")
    page = service.list_tasks({"contextId": "ctx-a", "pageSize": 2})
    assert page["totalSize"] == 3 and len(page["tasks"]) == 2 and page["nextPageToken"]
    assert "artifacts" not in page["tasks"][0]
    page2 = service.list_tasks({"contextId": "ctx-a", "pageSize": 2,
                                "pageToken": page["nextPageToken"]})
    assert page2["nextPageToken"] == ""
    assert {t["id"] for t in page["tasks"] + page2["tasks"]} == set(ids)
    rejected = service.list_tasks({"status": "TASK_STATE_REJECTED", "includeArtifacts": True})
    assert [t["contextId"] for t in rejected["tasks"]] == ["ctx-b"]
    for bad in ({"pageSize": 1000}, {"pageToken": "zz"}, {"status": "working"},
                {"historyLength": -1}):
        with pytest.raises(InvalidParams):
            service.list_tasks(bad)


@pytest.mark.parametrize("params", [
    {}, {"message": "hi"}, {"message": {"role": "ROLE_USER", "parts": [{"text": "x"}]}},
    {"message": {"messageId": "a", "role": "user", "parts": [{"text": "x"}]}},
    {"message": {"messageId": "a", "role": "ROLE_USER", "parts": []}},
    {"message": {"messageId": "a", "role": "ROLE_USER", "parts": [{"text": 1}]}},
    {"message": {"messageId": "a", "role": "ROLE_USER", "parts": [{"text": "x", "data": {}}]}},
    {"message": {"messageId": "a", "role": "ROLE_USER", "parts": [{"text": "x"}]},
     "configuration": {"historyLength": "lots"}},
])
def test_bad_send_params(service, params):
    with pytest.raises(InvalidParams):
        service.send_message(params, "tester")


def test_push_config_crud_and_refusals(service, tmp_path):
    task = service.send_message(msg("m-push"), "t")["task"]
    made = service.create_push_config(task["id"], {"url": "http://127.0.0.1:9/hook",
                                                   "token": "tok-1"})
    assert made["taskId"] == task["id"] and made["id"] and "_dialect" not in made
    assert service.get_push_config(task["id"], made["id"]) == made
    assert service.list_push_configs(task["id"])["configs"] == [made]
    service.delete_push_config(task["id"], made["id"])
    assert service.list_push_configs(task["id"])["configs"] == []
    service.delete_push_config(task["id"], made["id"])  # idempotent: no error the second time
    with pytest.raises(TaskNotFound):
        service.delete_push_config("no-such-task", made["id"])
    with pytest.raises(TaskNotFound):
        service.create_push_config("nope", {"url": "http://127.0.0.1:9/hook"})
    with pytest.raises(InvalidParams):
        service.create_push_config(task["id"], {"url": "ftp://x"})
    strict = PushSender()
    try:
        for url in ("http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://[::1]/x",
                    "http://169.254.169.254/latest"):
            assert "private or loopback" in strict.check_url(url)
    finally:
        strict.close()
    no_push = A2AService(TaskStore(tmp_path / "other.db"), EchoExecutor(), CardInfo(), None)
    with pytest.raises(PushNotificationNotSupported):
        no_push.list_push_configs(task["id"])


def test_restart_survival(tmp_path):
    path = tmp_path / "tasks.db"
    first = A2AService(TaskStore(path), EchoExecutor(), CardInfo())
    done = first.send_message(msg("tck-artifact-data-1"), "t")["task"]
    running = {"id": "task-running", "contextId": "ctx", "artifacts": [], "history": [],
               "status": {"state": "TASK_STATE_WORKING", "timestamp": "2026-01-01T00:00:00Z"}}
    first.store.save_task(running)  # as if the process died while this task ran
    first.store.close()
    second = A2AService(TaskStore(path), EchoExecutor(), CardInfo())
    assert second.get_task(done["id"]) == done
    failed = second.get_task("task-running")
    assert state(failed) == "TASK_STATE_FAILED"
    assert failed["status"]["message"]["parts"] == [{"text": "server restarted"}]
    with pytest.raises(TaskNotCancelable):
        second.cancel_task("task-running")


def test_shutdown_fails_running_tasks(tmp_path, hold):
    svc = A2AService(TaskStore(tmp_path / "t.db"), EchoExecutor(hold=hold), CardInfo())
    stream = svc.stream_message(msg("echo-hold-4"), "t")
    task_id = next(stream)["task"]["id"]
    svc.shutdown()
    assert list(stream)[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_FAILED"
    assert svc.get_task(task_id)["status"]["message"]["parts"][0]["text"] == \
        "server shutting down"


# -- the real agent loop ----------------------------------------------------------------------
@pytest.fixture
def llm(monkeypatch):
    with ScriptedLLMServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-A2A-0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("CODETETHER_DEFAULT_MODEL", "openai/gpt-4o")
        yield server
        server.release()


@pytest.fixture
def workspace(tmp_path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def agent_service(tmp_path, workspace, access_mode="ask") -> A2AService:
    executor = AgentExecutor(workspace, access_mode=access_mode)
    return A2AService(TaskStore(tmp_path / "agent.db"), executor, CardInfo())


def test_agent_turn_streams_text_as_artifact_chunks(llm, tmp_path, workspace):
    llm.enqueue(Turn(text="Hello from the agent, streamed.", text_chunk=6),
                Turn(text="Second turn remembers.", text_chunk=50))
    svc = agent_service(tmp_path, workspace)
    events = list(svc.stream_message(msg("a-1", "say hello", contextId="conv-1"), "tester"))
    chunks = [e["artifactUpdate"] for e in events if "artifactUpdate" in e]
    assert len(chunks) > 2
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == \
        "Hello from the agent, streamed."
    assert not chunks[0].get("append") and all(c["append"] for c in chunks[1:])
    assert chunks[-1]["lastChunk"] and not any(c.get("lastChunk") for c in chunks[:-1])
    final = events[-1]["statusUpdate"]["status"]
    assert final["state"] == "TASK_STATE_COMPLETED"
    assert final["message"]["parts"] == [{"text": "Hello from the agent, streamed."}]
    task = svc.get_task(events[0]["task"]["id"])
    assert task["artifacts"][0]["parts"] and len(task["artifacts"]) == 1
    # the same contextId continues the same session: the model sees the first exchange
    svc.send_message(msg("a-2", "and again", contextId="conv-1"), "tester")
    roles = [m["role"] for m in llm.requests[1].body["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "user"]
    svc.shutdown()


def test_agent_permission_ask_parks_in_input_required(llm, tmp_path, workspace):
    llm.enqueue(Turn(tool_calls=[ToolCall("write", {"path": "note.txt", "content": "hi\n"})]),
                Turn(text="Wrote the note."))
    svc = agent_service(tmp_path, workspace, access_mode="ask")
    task = svc.send_message(msg("p-1", "write a note"), "tester")["task"]
    assert state(task) == "TASK_STATE_INPUT_REQUIRED"
    assert "write" in task["status"]["message"]["parts"][0]["text"]
    assert not (workspace / "note.txt").exists()
    answer = msg("p-2", "once", taskId=task["id"])
    done = svc.send_message(answer, "tester")["task"]
    assert state(done) == "TASK_STATE_COMPLETED"
    assert (workspace / "note.txt").read_text() == "hi\n"
    assert done["status"]["message"]["parts"] == [{"text": "Wrote the note."}]
    svc.shutdown()


def test_agent_cancel_stops_the_turn(llm, tmp_path, workspace):
    llm.enqueue(Turn(text="a long answer that never finishes", text_chunk=4, hold_after=3))
    svc = agent_service(tmp_path, workspace)
    stream = svc.stream_message(msg("c-1", "talk"), "tester")
    task_id = next(stream)["task"]["id"]
    for event in stream:
        if "artifactUpdate" in event:
            break
    assert state(svc.cancel_task(task_id)) == "TASK_STATE_CANCELED"
    assert list(stream)[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_CANCELED"
    llm.release()
    svc.shutdown()
    assert svc.live_count() == 0


def test_idle_streams_yield_heartbeats(service, hold):
    stream = service.stream_message(msg("echo-hold-hb"), "tester", heartbeat=0.05)
    task_id = next(stream)["task"]["id"]
    for event in stream:  # up to the first chunk: after it the task is held
        if "artifactUpdate" in event:
            break
    assert next(stream) == {}  # nothing happened for a while: an empty dict, not an end
    sub = service.subscribe(task_id, heartbeat=0.05)
    assert next(sub)["task"]["id"] == task_id
    assert next(sub) == {}
    hold.set()
    rest = [e for e in stream if e]
    assert rest[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert [e for e in sub if e][-1] == rest[-1]


def test_agent_events_are_published_on_the_bus(llm, tmp_path, workspace):
    from codetether.bus import AgentBus

    bus = AgentBus()
    watcher = bus.subscribe("agent.*.events")
    llm.enqueue(Turn(tool_calls=[ToolCall("list", {"path": "."})]), Turn(text="listed"))
    executor = AgentExecutor(workspace, access_mode="ask", bus=bus)
    svc = A2AService(TaskStore(tmp_path / "agent.db"), executor, CardInfo(), bus=bus)
    task = svc.send_message(msg("b-1", "list files", contextId="conv-bus"), "tester")["task"]
    assert state(task) == "TASK_STATE_COMPLETED"
    seen = []
    while True:
        envelope = watcher.get(timeout=5)
        if envelope is None:
            break
        seen.append(envelope)
        if envelope.message.get("type") == "turn.finished":
            break
    types = [e.message["type"] for e in seen]
    assert "tool.started" in types and "tool.finished" in types and types[-1] == "turn.finished"
    session_topics = {e.topic for e in seen}
    assert len(session_topics) == 1 and session_topics.pop().endswith(".events")
    svc.shutdown()
