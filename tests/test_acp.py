"""`codetether acp` driven by the agent-client-protocol SDK client (a peer we did not write),
with a scripted LLM: handshake, sessions, streamed updates, permission requests, plans,
cancellation, session/load and MCP servers handed over by the editor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn
from tests.test_mcp_client import TIME_SERVER
from tests.test_mcp_server import child_env, codetether_argv

WAIT = 30.0


@pytest.fixture
def llm():
    with ScriptedLLMServer() as server:
        yield server
        server.release()


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "notes.txt").write_text("first line\n")
    return repo


class Editor:
    """The client side: records updates, answers permission requests with ``choice``."""

    def __init__(self, choice: str | None = "allow_once") -> None:
        self.choice = choice
        self.updates: list[Any] = []
        self.permission_requests: list[Any] = []
        self.asked = asyncio.Event()
        self.got_message = asyncio.Event()

    async def request_permission(self, options, session_id, tool_call, **kwargs):
        from acp.schema import AllowedOutcome, DeniedOutcome, RequestPermissionResponse

        self.permission_requests.append((tool_call, options))
        self.asked.set()
        if self.choice is None:  # wait until the turn is cancelled
            await asyncio.sleep(WAIT)
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected",
                                                                option_id=self.choice))

    async def session_update(self, session_id, update, **kwargs):
        self.updates.append(update)
        if update.session_update == "agent_message_chunk":
            self.got_message.set()

    def kinds(self) -> list[str]:
        return [u.session_update for u in self.updates]

    def text(self, kind: str = "agent_message_chunk") -> str:
        return "".join(u.content.text for u in self.updates if u.session_update == kind)

    def on_connect(self, conn) -> None:
        pass


def env_for(llm) -> dict[str, str]:
    env = child_env()
    env.update({"OPENAI_API_KEY": "sk-test-ACP-0123456789", "OPENAI_BASE_URL": llm.url + "/v1",
                "CODETETHER_DEFAULT_MODEL": "openai/gpt-4o"})
    return env


def drive(llm, editor: Editor, body, *extra: str):
    """Spawn `codetether acp`, initialize, then run ``body(conn)``."""
    import acp

    argv = codetether_argv("acp", *extra)

    async def main():
        async with acp.spawn_agent_process(editor, argv[0], *argv[1:], env=env_for(llm)) as (
                conn, _proc):
            init = await asyncio.wait_for(conn.initialize(protocol_version=1), WAIT)
            return init, await asyncio.wait_for(body(conn), WAIT)

    return asyncio.run(main())


def test_prompt_with_a_tool_behind_a_permission_request(llm, repo):
    import acp

    llm.enqueue(
        Turn(thinking="The user wants a line added.", text="I'll add it.",
             tool_calls=[ToolCall("edit", {"path": "notes.txt", "old_string": "first line",
                                           "new_string": "first line\nsecond line"})]),
        Turn(text="Done: notes.txt has two lines."))
    editor = Editor("allow_once")

    async def body(conn):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        reply = await conn.prompt(session_id=session.session_id,
                                  prompt=[acp.text_block("add a second line to notes.txt")])
        return session, reply

    init, (session, reply) = drive(llm, editor, body)
    assert init.protocol_version == 1 and init.agent_capabilities.load_session is True
    assert session.session_id.startswith("ses")
    assert reply.stop_reason == "end_turn"
    assert (repo / "notes.txt").read_text() == "first line\nsecond line\n"
    assert editor.text() == "I'll add it.Done: notes.txt has two lines."
    assert editor.text("agent_thought_chunk") == "The user wants a line added."
    (tool_call, options), = editor.permission_requests
    assert tool_call.tool_call_id == "call_0_edit" and tool_call.kind == "edit"
    assert {o.kind for o in options} == {"allow_once", "allow_always", "reject_once",
                                         "reject_always"}
    started = next(u for u in editor.updates if u.session_update == "tool_call")
    assert started.tool_call_id == "call_0_edit" and started.status == "pending"
    finished = [u for u in editor.updates if u.session_update == "tool_call_update"]
    assert finished[-1].status == "completed"
    # the order an editor relies on: call announced, then approved, then finished, then answer
    kinds = editor.kinds()
    assert kinds.index("tool_call") < kinds.index("tool_call_update")
    assert kinds[-1] == "agent_message_chunk"


def test_rejected_permission_fails_the_tool_call(llm, repo):
    import acp

    llm.enqueue(Turn(tool_calls=[ToolCall("write", {"path": "new.txt", "content": "x"})]),
                Turn(text="Understood, I will not write it."))
    editor = Editor("reject_once")

    async def body(conn):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        return await conn.prompt(session_id=session.session_id,
                                 prompt=[acp.text_block("write new.txt")])

    _, reply = drive(llm, editor, body)
    assert reply.stop_reason == "end_turn"
    assert not (repo / "new.txt").exists()
    failed = [u for u in editor.updates if u.session_update == "tool_call_update"]
    assert failed[-1].status == "failed"
    tool_result = [m for m in llm.requests[1].body["messages"] if m["role"] == "tool"][-1]
    assert "rejected" in tool_result["content"]


def test_todo_write_becomes_a_plan_update(llm, repo):
    import acp

    todos = [{"id": "1", "content": "read the code", "status": "completed"},
             {"id": "2", "content": "fix the bug", "status": "in_progress", "priority": "high"}]
    llm.enqueue(Turn(tool_calls=[ToolCall("todo_write", {"todos": todos})]), Turn(text="ok"))
    editor = Editor()

    async def body(conn):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        return await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("plan")])

    drive(llm, editor, body)
    plan = next(u for u in editor.updates if u.session_update == "plan")
    assert [(e.content, e.status, e.priority) for e in plan.entries] == [
        ("read the code", "completed", "medium"), ("fix the bug", "in_progress", "high")]
    assert not editor.permission_requests  # todos change only the agent's own state


def test_cancel_ends_the_prompt_with_cancelled(llm, repo):
    import acp

    llm.enqueue(Turn(text="This answer will be cut off half way", hold_after=3))
    editor = Editor()

    async def body(conn):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        prompt = asyncio.create_task(conn.prompt(session_id=session.session_id,
                                                 prompt=[acp.text_block("long answer")]))
        assert await asyncio.to_thread(llm.holding.wait, WAIT)
        await conn.cancel(session_id=session.session_id)
        return await prompt

    _, reply = drive(llm, editor, body)
    assert reply.stop_reason == "cancelled"


def test_cancel_withdraws_a_pending_permission_request(llm, repo):
    import acp

    llm.enqueue(Turn(tool_calls=[ToolCall("write", {"path": "x.txt", "content": "x"})]))
    editor = Editor(choice=None)  # never answers

    async def body(conn):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        prompt = asyncio.create_task(conn.prompt(session_id=session.session_id,
                                                 prompt=[acp.text_block("write x")]))
        await asyncio.wait_for(editor.asked.wait(), WAIT)
        await conn.cancel(session_id=session.session_id)
        return await prompt

    _, reply = drive(llm, editor, body)
    assert reply.stop_reason == "cancelled"
    assert not (repo / "x.txt").exists()


def test_load_session_replays_the_conversation(llm, repo):
    import acp

    llm.enqueue(Turn(text="The answer is 42."))
    first = Editor()

    async def create(conn):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("question?")])
        return session.session_id

    _, session_id = drive(llm, first, create)
    second = Editor()

    async def load(conn):
        await conn.load_session(cwd=str(repo), session_id=session_id, mcp_servers=[])
        await asyncio.wait_for(second.got_message.wait(), WAIT)
        return True

    drive(llm, second, load)
    assert second.text("user_message_chunk") == "question?"
    assert second.text() == "The answer is 42."


def test_errors_are_json_rpc_errors_not_crashes(llm, repo):
    import acp
    from acp import RequestError

    async def body(conn):
        errors = []
        try:
            await conn.prompt(session_id="ses_nope", prompt=[acp.text_block("hi")])
        except RequestError as exc:
            errors.append(exc)
        try:
            await conn.new_session(cwd="relative/path", mcp_servers=[])
        except RequestError as exc:
            errors.append(exc)
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])  # still alive
        return errors, session

    _, (errors, session) = drive(llm, Editor(), body)
    assert [e.code for e in errors] == [-32602, -32602]
    assert "unknown session" in str(errors[0])
    assert session.session_id


def test_mcp_servers_from_the_editor_become_tools(llm, repo):
    import acp
    from acp.schema import McpServerStdio

    llm.enqueue(Turn(tool_calls=[ToolCall("clock_get_current_time", {"timezone": "UTC"})]),
                Turn(text="It is late."))
    editor = Editor()

    async def body(conn):
        server = McpServerStdio(name="clock", command=TIME_SERVER, args=[], env=[])
        session = await conn.new_session(cwd=str(repo), mcp_servers=[server])
        return await conn.prompt(session_id=session.session_id,
                                 prompt=[acp.text_block("what time is it?")])

    _, reply = drive(llm, editor, body)
    assert reply.stop_reason == "end_turn"
    offered = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
    assert "clock_get_current_time" in offered
    done = [u for u in editor.updates if u.session_update == "tool_call_update"][-1]
    assert done.status == "completed" and '"timezone": "UTC"' in done.content[0].content.text
    assert not editor.permission_requests  # the server marks the tool read-only


def test_no_provider_is_one_clear_error(tmp_path, repo):
    import acp
    from acp import RequestError

    argv = codetether_argv("acp")

    async def main():
        async with acp.spawn_agent_process(Editor(), argv[0], *argv[1:], env=child_env()) as (
                conn, _proc):
            await conn.initialize(protocol_version=1)
            with pytest.raises(RequestError) as err:
                await conn.new_session(cwd=str(repo), mcp_servers=[])
            return err.value

    error = asyncio.run(asyncio.wait_for(main(), WAIT))
    assert "Traceback" not in str(error)
    assert "no provider" in str(error).lower() or "credentials" in str(error).lower()
