"""What runs an A2A task: the agent loop (``AgentExecutor``) or a deterministic echo.

An executor gets a ``service.TaskRun`` and reports through it (status, artifacts, asking for
input); it returns when the task is done. ``respond(message)`` may answer a message directly
with a Message instead of creating a task (the echo backend does this for the TCK's
``tck-message-response``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from codetether.a2a.service import TaskRun

log = logging.getLogger("codetether.a2a.executor")


class Executor(Protocol):
    def respond(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """A direct Message answer, or None to run a task."""

    def execute(self, run: TaskRun) -> None:
        """Run the task to its end (the service completes it if this returns early)."""


# -- echo --------------------------------------------------------------------------------------
FILE_PART = {"raw": base64.b64encode(b"file output").decode(), "filename": "output.txt",
             "mediaType": "text/plain"}
URL_PART = {"url": "https://example.com/output.txt", "filename": "output.txt",
            "mediaType": "text/plain"}
DATA_PART = {"data": {"key": "value", "count": 42}}

# (prefix, streamed text) for "working -> one artifact -> completed"; longest prefixes first.
_STREAM_TEXT = (
    ("tck-stream-artifact-text", "Streamed text content"),
    ("tck-stream-ordering-001", "Ordered output"),
    ("tck-stream-001", "Stream hello from TCK"),
    ("tck-stream-003", "Stream task lifecycle"),
)


class EchoExecutor:
    """A deterministic agent without an LLM, for smoke tests, benchmarks and the A2A TCK.

    It routes on the messageId prefix exactly as the TCK's SUT requirements say
    (protocols.md §2); any other message is echoed back as an artifact. ``echo-hold`` (for
    tests) streams one chunk, waits for ``hold`` to be set (or a cancel), then finishes.
    """

    def __init__(self, hold: threading.Event | None = None,
                 streaming_timeout: float | None = None,
                 resubscribe_hold: float | None = None) -> None:
        # the TCK's own knob: its resubscribe test needs us working for 2x its streaming timeout
        if streaming_timeout is None:
            streaming_timeout = float(os.environ.get("TCK_STREAMING_TIMEOUT") or 2.0)
        self.hold = hold
        self.streaming_timeout = streaming_timeout
        self.resubscribe_hold = resubscribe_hold if resubscribe_hold is not None \
            else 2 * streaming_timeout

    def respond(self, message: dict[str, Any]) -> dict[str, Any] | None:
        if message["messageId"].startswith("tck-message-response"):
            return {"role": "ROLE_AGENT", "parts": [{"text": "Direct message response"}]}
        return None

    def execute(self, run: TaskRun) -> None:
        mid = run.message["messageId"]
        for prefix, text in _STREAM_TEXT:
            if mid.startswith(prefix):
                run.working()
                run.artifact([{"text": text}], last_chunk=True)
                run.complete()
                return
        handler = self._handler(mid)
        if handler is not None:
            handler(run)
            return
        self._echo(run)

    def _handler(self, mid: str):
        table = (
            ("tck-stream-artifact-chunked", self._chunked),
            ("tck-stream-artifact-file", self._stream_file),
            ("tck-stream-002", lambda run: run.complete()),
            ("test-resubscribe-message-id", self._resubscribe),
            ("tck-delayed-complete", self._delayed),
            ("tck-artifact-file-url", lambda run: self._artifact_task(run, URL_PART)),
            ("tck-artifact-file", lambda run: self._artifact_task(run, FILE_PART)),
            ("tck-artifact-text", lambda run: self._artifact_task(
                run, {"text": "Generated text content"})),
            ("tck-artifact-data", lambda run: self._artifact_task(run, DATA_PART)),
            ("tck-input-required", self._input_required),
            ("tck-reject-task", lambda run: run.reject("rejected")),
            ("tck-complete-task", lambda run: run.complete("Hello from TCK")),
            ("echo-hold", self._held),
        )
        for prefix, handler in table:
            if mid.startswith(prefix):
                return handler
        return None

    @staticmethod
    def _artifact_task(run: TaskRun, part: dict[str, Any]) -> None:
        run.artifact([dict(part)], last_chunk=True)
        run.complete()

    @staticmethod
    def _chunked(run: TaskRun) -> None:
        run.working()
        artifact_id = run.new_artifact_id()
        run.artifact([{"text": "chunk-1 "}], artifact_id, append=True)
        run.artifact([{"text": "chunk-2"}], artifact_id, append=True, last_chunk=True)
        run.complete()

    @staticmethod
    def _stream_file(run: TaskRun) -> None:
        run.working()
        run.artifact([dict(FILE_PART)], last_chunk=True)
        run.complete()

    def _resubscribe(self, run: TaskRun) -> None:
        run.working()
        if not run.cancel.wait(self.resubscribe_hold):
            run.complete()

    def _delayed(self, run: TaskRun) -> None:
        run.working()
        if not run.cancel.wait(self.streaming_timeout):
            run.complete("Done after delay")

    @staticmethod
    def _input_required(run: TaskRun) -> None:
        answer = run.ask("Input required")
        if answer is not None:
            run.complete(f"Received: {run.text(answer)}")

    def _held(self, run: TaskRun) -> None:
        run.working()
        artifact_id = run.new_artifact_id()
        run.artifact([{"text": "part-1 "}], artifact_id)
        if self.hold is not None:
            while not self.hold.wait(0.05):
                if run.cancel.cancelled:
                    return
        run.artifact([{"text": "part-2"}], artifact_id, append=True, last_chunk=True)
        run.complete("held task done")

    @staticmethod
    def _echo(run: TaskRun) -> None:
        run.working()
        run.artifact([dict(p) for p in run.message["parts"]], name="echo", last_chunk=True)
        run.complete(f"Echo: {run.text()}")


# -- the agent ---------------------------------------------------------------------------------
APPROVE = {"once": "once", "yes": "once", "y": "once", "approve": "once", "allow": "once",
           "ok": "once", "always": "always", "reject": "reject", "no": "reject", "n": "reject",
           "deny": "reject"}
MAX_INLINE_FILE = 256 * 1024


class AgentExecutor:
    """A message becomes one turn of the build agent (or ``metadata.agent``) in a session kept
    per ``contextId``, so a conversation continues where it left off.

    Text deltas stream as chunks of one artifact (``append`` / ``lastChunk``); a tool call that
    needs a person parks the task in input-required with the question, and the next message on
    the task answers it (once / always / reject); cancelling the task cancels the turn.
    """

    def __init__(self, workspace: Path | None = None, model: str | None = None,
                 agent_name: str | None = None, access_mode: str | None = None,
                 max_steps: int | None = None, bus: Any = None) -> None:
        self.workspace = Path(workspace or Path.cwd()).resolve()
        self.bus = bus  # agent events go to agent.{session}.events when set
        self.model = model
        self.agent_name = agent_name
        self.access_mode = access_mode
        self.max_steps = max_steps
        self._sessions: Any = None
        self._lock = threading.Lock()
        self._context_locks: dict[str, threading.Lock] = {}

    def respond(self, message: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def _store(self) -> Any:
        with self._lock:
            if self._sessions is None:
                from codetether.agent.store import SessionStore

                self._sessions = SessionStore()
            return self._sessions

    def _context_lock(self, context_id: str) -> threading.Lock:
        with self._lock:
            return self._context_locks.setdefault(context_id, threading.Lock())

    def execute(self, run: TaskRun) -> None:
        from codetether.core.errors import CodetetherError

        with self._context_lock(run.context_id):
            try:
                self._turn(run)
            except CodetetherError as exc:
                if not run.cancel.cancelled:
                    run.fail(exc.one_line())

    def _turn(self, run: TaskRun) -> None:
        from codetether.agent.setup import build_runtime
        from codetether.core.config import load_config

        store = self._store()
        session_id = run.store.session_for(run.context_id)
        session = store.load(session_id) if session_id else None
        stream = _ArtifactStream(run)
        agent_name = run.metadata.get("agent") if isinstance(run.metadata.get("agent"),
                                                             str) else None
        agent = build_runtime(
            session=session, store=store, cfg=load_config(self.workspace, warn=False),
            workspace=self.workspace, model=self.model,
            agent_name=agent_name or self.agent_name, access_mode=self.access_mode,
            max_steps=self.max_steps, on_event=stream.on_event,
            approver=lambda request: self._approve(run, stream, request),
            ask_user=lambda question, options: self._ask(run, stream, question, options),
            bus=self.bus)
        run.store.set_session(run.context_id, agent.session.id)
        run.cancel.on_cancel(agent.rt.cancel.cancel)
        run.working()
        prompt, attachments = _prompt(run.message)
        result = agent.run(prompt, attachments)
        stream.close()
        if result.stop_reason == "cancelled" or run.cancel.cancelled:
            return
        text = result.response or f"(the turn ended with {result.stop_reason} and no answer)"
        run.complete(text)

    @staticmethod
    def _ask(run: TaskRun, stream: _ArtifactStream, question: str, options: list[str]) -> str:
        """The question tool: the task asks its client and waits (input-required)."""
        stream.flush()
        shown = question + (f"\nOptions: {', '.join(options)}" if options else "")
        answer = run.ask(shown, metadata={"question": {"options": ", ".join(options)}})
        if answer is None:
            return ""
        run.working()
        return run.text(answer)

    @staticmethod
    def _approve(run: TaskRun, stream: _ArtifactStream, request: Any) -> str:
        stream.flush()
        shown = f"{request.tool} {request.subject!r}" if request.subject else request.tool
        question = (f"Permission needed to run {shown} ({request.reason}). Reply 'once', "
                    "'always' or 'reject'.")
        answer = run.ask(question, metadata={"approval": {
            "callId": request.call_id, "tool": request.tool, "subject": request.subject or "",
            "reason": request.reason}})
        if answer is None:
            return "reject"
        decision = _decision(answer)
        run.working()
        return decision


class _ArtifactStream:
    """Agent events -> A2A: text deltas as chunks of one response artifact (one delta held
    back so the last one can carry ``lastChunk``), tool activity as working updates."""

    def __init__(self, run: TaskRun) -> None:
        self.run = run
        self.artifact_id = f"{run.task_id}-response"
        self.sent = False
        self.held: str | None = None
        self.gap = False
        self.lock = threading.Lock()

    def on_event(self, event: Any) -> None:
        if event.type == "text.delta":
            self._text(event.data.get("text", ""))
        elif event.type == "tool.started":
            self.flush()
            self.gap = True
            self.run.status("TASK_STATE_WORKING", metadata={
                "event": "tool.started", "tool": event.data.get("name", ""),
                "callId": event.data.get("call_id", "")})
        elif event.type == "tool.finished":
            self.run.status("TASK_STATE_WORKING", metadata={
                "event": "tool.finished", "tool": event.data.get("name", ""),
                "callId": event.data.get("call_id", ""),
                "success": str(bool(event.data.get("success")))})

    def _text(self, text: str) -> None:
        if not text:
            return
        with self.lock:
            if self.gap and (self.sent or self.held):
                text = "\n\n" + text
            self.gap = False
            previous, self.held = self.held, text
        if previous is not None:
            self._send(previous, last=False)

    def _send(self, text: str, last: bool) -> None:
        with self.lock:
            append, self.sent = self.sent, True
        self.run.artifact([{"text": text}], self.artifact_id, name="response", append=append,
                          last_chunk=last)

    def flush(self) -> None:
        with self.lock:
            held, self.held = self.held, None
        if held is not None:
            self._send(held, last=False)

    def close(self) -> None:
        with self.lock:
            held, self.held = self.held, None
        if held is not None:
            self._send(held, last=True)
        elif self.sent:
            self._send("", last=True)


def _decision(message: dict[str, Any]) -> str:
    for part in message.get("parts", []):
        data = part.get("data") if isinstance(part, dict) else None
        if isinstance(data, dict):
            value = str(data.get("decision") or data.get("answer") or "").strip().lower()
            if value in APPROVE:
                return APPROVE[value]
    text = "".join(p.get("text", "") for p in message.get("parts", []) if isinstance(p, dict))
    word = text.strip().lower().split()[0] if text.strip() else ""
    return APPROVE.get(word.strip(".!,"), "reject")


def _prompt(message: dict[str, Any]) -> tuple[str, list[Any]]:
    """The message as a prompt: text parts joined; data, files and URLs described inline."""
    pieces: list[str] = []
    for part in message.get("parts", []):
        if "text" in part:
            pieces.append(part["text"])
        elif "data" in part:
            pieces.append("```json\n" + json.dumps(part["data"], indent=2) + "\n```")
        elif "url" in part:
            pieces.append(f"[file {part.get('filename') or ''} at {part['url']}]")
        elif "raw" in part:
            pieces.append(_inline_file(part))
    return "\n\n".join(p for p in pieces if p), []


def _inline_file(part: dict[str, Any]) -> str:
    name = part.get("filename") or "attachment"
    media = part.get("mediaType") or "application/octet-stream"
    try:
        data = base64.b64decode(part["raw"], validate=False)
    except (ValueError, TypeError):
        return f"[file {name}: not valid base64]"
    if media.startswith("text/") or media in ("application/json", "application/xml"):
        text = data[:MAX_INLINE_FILE].decode("utf-8", "replace")
        return f"[file {name} ({media})]\n{text}"
    return f"[file {name} ({media}, {len(data)} bytes) attached; binary content not shown]"
