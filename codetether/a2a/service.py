"""The A2A task service: protocol-neutral operations over v1.0 JSON dicts.

Every binding (JSON-RPC v1.0 and v0.3, REST, gRPC) calls the same methods, so a task sent over
one can be read, streamed or cancelled over another. A task runs on its own thread through an
``Executor``; what it reports goes through ``_publish``, which applies the event to the task,
writes the task to the store, and only then hands the event to every subscriber (a bounded
queue each, so a stalled client cannot grow memory without limit: it is cut off instead) and to
the push sender. A late subscriber registers under the same lock that publishing holds, so it
gets the current snapshot and then exactly the events after it: none lost, none twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from codetether.a2a.errors import (
    A2AError,
    ExtendedCardNotConfigured,
    InvalidParams,
    PushNotificationNotSupported,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
)
from codetether.a2a.store import INTERRUPTED, TERMINAL, TaskStore, failed_status, now_iso
from codetether.core.cancel import CancelToken

log = logging.getLogger("codetether.a2a")

SUBSCRIBER_QUEUE = 4096  # events a subscriber may fall behind before it is cut off
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
SHUTDOWN_REASON = "server shutting down"
_PART_KINDS = ("text", "raw", "url", "data")


@dataclass
class CardInfo:
    """What the agent card says about this agent (bindings add the URLs)."""

    name: str = "CodeTether"
    description: str = "A coding agent: it reads, edits and runs code in its workspace."
    version: str = ""
    streaming: bool = True
    push_notifications: bool = True
    extended_card: bool = True
    bearer_auth: bool = True
    input_modes: list[str] = field(default_factory=lambda: ["text/plain", "application/json"])
    output_modes: list[str] = field(default_factory=lambda: ["text/plain", "application/json"])
    skills: list[dict[str, Any]] = field(default_factory=list)
    extended_skills: list[dict[str, Any]] = field(default_factory=list)
    provider: dict[str, str] | None = None


class _Subscriber:
    """One stream's view of a task: an unbounded queue policed to ``SUBSCRIBER_QUEUE``."""

    def __init__(self) -> None:
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.closed = False

    def offer(self, event: dict[str, Any]) -> bool:
        if self.queue.qsize() >= SUBSCRIBER_QUEUE:
            self.closed = True
            self.queue.put(None)  # the stream ends; the client can subscribe again
            return False
        self.queue.put(event)
        return True


class _Live:
    """A task whose executor thread is alive (running or parked in input-required)."""

    def __init__(self, task: dict[str, Any], principal: str) -> None:
        self.task = task
        self.principal = principal
        self.lock = threading.RLock()
        self.subscribers: list[_Subscriber] = []
        self.cancel = CancelToken()
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.done = threading.Event()

    @property
    def state(self) -> str:
        return self.task["status"]["state"]


class A2AService:
    """The operations of A2A, thread-safe, raising ``A2AError`` for the caller's mistakes."""

    def __init__(self, store: TaskStore, executor: Any, card: CardInfo | None = None,
                 push: Any = None, bus: Any = None, audit: Callable[..., None] | None = None
                 ) -> None:
        self.store = store
        self.executor = executor
        self.card = card or CardInfo()
        self.push = push
        self.bus = bus
        self.audit = audit
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        store.fail_unfinished()

    # -- sending -----------------------------------------------------------------------------
    def send_message(self, params: dict[str, Any], principal: str = "") -> dict[str, Any]:
        """``{"task"}`` when the task stops (terminal or interrupted), or at once if
        ``configuration.returnImmediately``; ``{"message"}`` for a direct answer."""
        config = _config(params)
        started = self._start(params, principal)
        if "message" in started:
            return started
        live, sub = started["live"], started["sub"]
        if config.get("returnImmediately"):
            self._unsubscribe(live, sub)
            return {"task": self._view(started["snapshot"], config.get("historyLength"))}
        for _event in self._follow(live, sub):
            pass
        return {"task": self.get_task(live.task["id"], config.get("historyLength"))}

    def stream_message(self, params: dict[str, Any], principal: str = "",
                       heartbeat: float | None = None) -> Iterator[dict[str, Any]]:
        """The task, then its updates until a terminal or interrupted state (or one message).

        The work starts before the first item is asked for, so errors in the request raise
        here, not mid-stream. With ``heartbeat`` seconds, an empty dict comes out whenever
        nothing happened for that long (SSE bindings send a comment: idle clients and proxies
        keep the connection, and a client that left is noticed)."""
        if not self.card.streaming:
            raise UnsupportedOperation("streaming is not supported by this agent")
        started = self._start(params, principal)
        if "message" in started:
            return iter([started])
        history = _config(params).get("historyLength")
        first = {"task": self._view(started["snapshot"], history)}
        return self._follow(started["live"], started["sub"], first, heartbeat)

    def _start(self, params: dict[str, Any], principal: str) -> dict[str, Any]:
        message = _message(params)
        task_id = message.get("taskId")
        if task_id:
            return self._continue(task_id, message, params, principal)
        reply = _direct_reply(self.executor, message)
        if reply is not None:
            return {"message": reply}
        context_id = message.get("contextId") or str(uuid.uuid4())
        task_id = str(uuid.uuid4())
        message = {**message, "taskId": task_id, "contextId": context_id}
        task = {"id": task_id, "contextId": context_id,
                "status": {"state": "TASK_STATE_SUBMITTED", "timestamp": now_iso()},
                "artifacts": [], "history": [message]}
        if isinstance(params.get("metadata"), dict) and params["metadata"]:
            task["metadata"] = params["metadata"]
        push_config = _config(params).get("taskPushNotificationConfig")
        if push_config:
            if self.push is None or not self.card.push_notifications:
                raise PushNotificationNotSupported()
            push_config = self._checked_push_config(task_id, push_config)
        live = _Live(task, principal)
        self.store.save_task(task, principal)
        if push_config:
            self.store.save_push_config(task_id, push_config)
        sub = _Subscriber()
        live.subscribers.append(sub)
        snapshot = _copy(task)
        with self._lock:
            self._live[task_id] = live
        self._audit(principal, "a2a.task.create", task_id, "submitted",
                    context_id=context_id)
        thread = threading.Thread(target=self._run, args=(live, message, params),
                                  name=f"a2a-task-{task_id[:8]}", daemon=True)
        thread.start()
        return {"live": live, "sub": sub, "snapshot": snapshot}

    def _continue(self, task_id: str, message: dict[str, Any], params: dict[str, Any],
                  principal: str) -> dict[str, Any]:
        """A message for an existing task: the answer a parked (input-required) task waits for."""
        live = self._live.get(task_id)
        if live is None:
            task = self.store.get_task(task_id)
            if task is None:
                raise TaskNotFound(f"task {task_id} not found", {"taskId": task_id})
            raise UnsupportedOperation(
                f"task {task_id} is {_short(task['status']['state'])}; send a new message "
                "without taskId to start another task", {"taskId": task_id})
        with live.lock:
            if message.get("contextId") and message["contextId"] != live.task["contextId"]:
                raise InvalidParams(f"contextId {message['contextId']} does not match task "
                                    f"{task_id}'s context {live.task['contextId']}")
            if live.state in TERMINAL:
                raise UnsupportedOperation(f"task {task_id} is already {_short(live.state)}")
            if live.state not in INTERRUPTED:
                raise UnsupportedOperation(
                    f"task {task_id} is still {_short(live.state)}; wait for it to ask for "
                    "input, or cancel it")
            message = {**message, "contextId": live.task["contextId"]}
            live.task.setdefault("history", []).append(message)
            self._set_status(live, {"state": "TASK_STATE_WORKING", "timestamp": now_iso()})
            sub = _Subscriber()
            live.subscribers.append(sub)
            snapshot = _copy(live.task)
        live.inbox.put(message)
        return {"live": live, "sub": sub, "snapshot": snapshot}

    # -- running -----------------------------------------------------------------------------
    def _run(self, live: _Live, message: dict[str, Any], params: dict[str, Any]) -> None:
        run = TaskRun(self, live, message, params.get("metadata") or {})
        try:
            self.executor.execute(run)
        except Exception as exc:  # an executor bug must end the task, not hang its clients
            log.exception("executor failed on task %s", live.task["id"])
            run.fail(f"the agent failed: {type(exc).__name__}: {exc}")
        finally:
            with live.lock:
                if live.state not in TERMINAL:
                    if live.cancel.cancelled:
                        self._set_status(live, _status("TASK_STATE_CANCELED", live, "canceled"))
                    else:
                        self._set_status(live, _status("TASK_STATE_COMPLETED", live))
            live.done.set()

    def _publish(self, live: _Live, event: dict[str, Any]) -> bool:
        """Apply, persist, then fan out one StreamResponse; False if the task already ended."""
        with live.lock:
            if live.state in TERMINAL:
                return False
            if "statusUpdate" in event:
                status = event["statusUpdate"]["status"]
                message = status.get("message")
                if message:
                    live.task.setdefault("history", []).append(message)
                live.task["status"] = status
            elif "artifactUpdate" in event:
                update = event["artifactUpdate"]
                _merge_artifact(live.task, update["artifact"], bool(update.get("append")))
            self.store.save_task(live.task, live.principal)
            for sub in list(live.subscribers):
                if not sub.offer(event):
                    live.subscribers.remove(sub)
            ended = live.state in TERMINAL
            if ended:
                for sub in live.subscribers:
                    sub.queue.put(None)
                live.subscribers.clear()
                with self._lock:
                    self._live.pop(live.task["id"], None)
                live.inbox.put(None)  # wake a parked executor
            self._notify(live, event)  # under the lock: webhooks see the order streams see
        if ended:
            self._audit(live.principal, "a2a.task.finish", live.task["id"],
                        _short(live.state), context_id=live.task["contextId"])
        return True

    def _set_status(self, live: _Live, status: dict[str, Any],
                    metadata: dict[str, Any] | None = None) -> bool:
        update: dict[str, Any] = {"taskId": live.task["id"], "contextId": live.task["contextId"],
                                  "status": status}
        if metadata:
            update["metadata"] = metadata
        return self._publish(live, {"statusUpdate": update})

    def _notify(self, live: _Live, event: dict[str, Any]) -> None:
        """Push and bus: status changes and whole artifacts (not every streamed chunk)."""
        update = event.get("artifactUpdate")
        if update is not None and update.get("append") and not update.get("lastChunk"):
            return
        if self.push is not None:
            try:
                configs = self.store.push_configs(live.task["id"])
                if configs:
                    self.push.deliver(configs, event, _copy(live.task))
            except Exception:
                log.exception("push notification for task %s failed", live.task["id"])
        if self.bus is not None:
            try:
                self._to_bus(live, event)
            except Exception:
                log.exception("bus publish for task %s failed", live.task["id"])

    def _to_bus(self, live: _Live, event: dict[str, Any]) -> None:
        task_id = live.task["id"]
        if "statusUpdate" in event:
            message = {"kind": "task_update", "task_id": task_id, "state": live.state,
                       "context_id": live.task["contextId"],
                       "status": event["statusUpdate"]["status"]}
        else:
            message = {"kind": "artifact_update", "task_id": task_id,
                       "artifact": event["artifactUpdate"]["artifact"]}
        self.bus.publish(f"task.{task_id}", message, sender_id="a2a")

    # -- following ---------------------------------------------------------------------------
    def _follow(self, live: _Live, sub: _Subscriber, first: dict[str, Any] | None = None,
                heartbeat: float | None = None) -> Iterator[dict[str, Any]]:
        try:
            if first is not None:
                yield first
                state = first.get("task", {}).get("status", {}).get("state")
                if state in TERMINAL:
                    return
            while True:
                try:
                    event = sub.queue.get(timeout=heartbeat)
                except queue.Empty:
                    yield {}
                    continue
                if event is None:
                    return
                yield event
                state = event.get("statusUpdate", {}).get("status", {}).get("state")
                if state in TERMINAL or state in INTERRUPTED:
                    return
        finally:
            self._unsubscribe(live, sub)

    def _unsubscribe(self, live: _Live, sub: _Subscriber) -> None:
        with live.lock:
            if sub in live.subscribers:
                live.subscribers.remove(sub)

    def subscribe(self, task_id: str, heartbeat: float | None = None
                  ) -> Iterator[dict[str, Any]]:
        """The task as it is now, then every update until it stops; terminal tasks: -32004.
        ``heartbeat`` as for ``stream_message``."""
        live = self._live.get(task_id)
        if live is not None:
            with live.lock:
                if live.state not in TERMINAL:
                    sub = _Subscriber()
                    live.subscribers.append(sub)
                    return self._follow(live, sub, {"task": _copy(live.task)}, heartbeat)
        task = self.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"task {task_id} not found", {"taskId": task_id})
        raise UnsupportedOperation(f"task {task_id} is {_short(task['status']['state'])}; "
                                   "there is nothing to subscribe to", {"taskId": task_id})

    # -- reading -----------------------------------------------------------------------------
    def get_task(self, task_id: str, history_length: int | None = None) -> dict[str, Any]:
        if not isinstance(task_id, str) or not task_id:
            raise InvalidParams("id must be a non-empty string")
        _check_history_length(history_length)
        live = self._live.get(task_id)
        if live is not None:
            with live.lock:
                task = _copy(live.task)
        else:
            task = self.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"task {task_id} not found", {"taskId": task_id})
        return self._view(task, history_length)

    @staticmethod
    def _view(task: dict[str, Any], history_length: int | None) -> dict[str, Any]:
        if history_length is not None and "history" in task:
            task["history"] = task["history"][-history_length:] if history_length > 0 else []
        return task

    def list_tasks(self, params: dict[str, Any]) -> dict[str, Any]:
        """``ListTasks``: filter by context and state, newest change first, offset page tokens."""
        page_size = _int_param(params, "pageSize", DEFAULT_PAGE_SIZE)
        if page_size == 0:
            page_size = DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidParams(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
        token = params.get("pageToken") or "0"
        if not isinstance(token, str) or not token.isdigit():
            raise InvalidParams("pageToken is not one this server gave out")
        history = params.get("historyLength")
        history = None if history is None else _int_param(params, "historyLength", 0)
        _check_history_length(history)
        state = params.get("status")
        if state in (None, "", "TASK_STATE_UNSPECIFIED", 0):
            state = None
        elif not isinstance(state, str) or not state.startswith("TASK_STATE_"):
            raise InvalidParams(f"unknown task state {state!r}")
        context_id = params.get("contextId")
        if context_id is not None and not isinstance(context_id, str):
            raise InvalidParams("contextId must be a string")
        after = params.get("statusTimestampAfter")
        if after is not None and not isinstance(after, str):
            raise InvalidParams("statusTimestampAfter must be an RFC 3339 timestamp")
        offset = int(token)
        tasks, total = self.store.list_tasks(context_id or None, state, after or None,
                                             page_size, offset)
        out = []
        for task in tasks:
            task = self._view(task, history)
            if not params.get("includeArtifacts"):
                task.pop("artifacts", None)
            out.append(task)
        more = offset + len(tasks) < total
        return {"tasks": out, "nextPageToken": str(offset + len(tasks)) if more else "",
                "pageSize": page_size, "totalSize": total}

    # -- cancelling --------------------------------------------------------------------------
    def cancel_task(self, task_id: str, principal: str = "") -> dict[str, Any]:
        if not isinstance(task_id, str) or not task_id:
            raise InvalidParams("id must be a non-empty string")
        live = self._live.get(task_id)
        if live is None:
            task = self.store.get_task(task_id)
            if task is None:
                raise TaskNotFound(f"task {task_id} not found", {"taskId": task_id})
            raise TaskNotCancelable(f"task {task_id} is already {_short(task['status']['state'])}",
                                    {"taskId": task_id})
        with live.lock:
            if live.state in TERMINAL:
                raise TaskNotCancelable(f"task {task_id} is already {_short(live.state)}",
                                        {"taskId": task_id})
            live.cancel.cancel()
            self._set_status(live, _status("TASK_STATE_CANCELED", live, "canceled"))
            task = _copy(live.task)
        self._audit(principal or live.principal, "a2a.task.cancel", task_id, "canceled")
        return task

    # -- push configs ------------------------------------------------------------------------
    def _require_push(self) -> None:
        if self.push is None or not self.card.push_notifications:
            raise PushNotificationNotSupported()

    def _known_task(self, task_id: Any) -> None:
        if not isinstance(task_id, str) or not task_id:
            raise InvalidParams("taskId must be a non-empty string")
        if task_id not in self._live and self.store.get_task(task_id) is None:
            raise TaskNotFound(f"task {task_id} not found", {"taskId": task_id})

    def _checked_push_config(self, task_id: str, config: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(config, dict):
            raise InvalidParams("the push notification config must be an object")
        url = config.get("url")
        if not isinstance(url, str) or not url:
            raise InvalidParams("the push notification config needs a url")
        problem = self.push.check_url(url)
        if problem:
            raise InvalidParams(problem)
        out: dict[str, Any] = {"id": config.get("id") or str(uuid.uuid4()), "taskId": task_id,
                               "url": url}
        for key in ("token", "authentication", "_dialect"):
            if config.get(key):
                out[key] = config[key]
        auth = out.get("authentication")
        if auth is not None and not isinstance(auth, dict):
            raise InvalidParams("authentication must be an object {scheme, credentials}")
        return out

    def create_push_config(self, task_id: str, config: dict[str, Any], dialect: str = "1.0"
                           ) -> dict[str, Any]:
        """Store a webhook for a task (``dialect`` "0.3" makes it receive Task bodies)."""
        self._require_push()
        self._known_task(task_id)
        if config.get("taskId") and config["taskId"] != task_id:
            raise InvalidParams("taskId in the config does not match the task")
        checked = self._checked_push_config(task_id, {**config, "_dialect": dialect})
        self.store.save_push_config(task_id, checked)
        return _public_config(checked)

    def get_push_config(self, task_id: str, config_id: str | None) -> dict[str, Any]:
        self._require_push()
        self._known_task(task_id)
        configs = self.store.push_configs(task_id)
        if not config_id and configs:  # v0.3 allowed asking without an id: the first one
            return _public_config(configs[0])
        for config in configs:
            if config["id"] == config_id:
                return _public_config(config)
        raise TaskNotFound(f"push notification config {config_id} not found for task {task_id}",
                           {"taskId": task_id, "configId": str(config_id)})

    def list_push_configs(self, task_id: str) -> dict[str, Any]:
        self._require_push()
        self._known_task(task_id)
        return {"configs": [_public_config(c) for c in self.store.push_configs(task_id)],
                "nextPageToken": ""}

    def delete_push_config(self, task_id: str, config_id: str) -> None:
        self._require_push()
        self._known_task(task_id)
        if not isinstance(config_id, str) or not config_id:
            raise InvalidParams("id must be a non-empty string")
        # deleting what is already gone succeeds: DELETE is idempotent (A2A TCK PUSH-DEL-002)
        self.store.delete_push_config(task_id, config_id)

    # -- cards -------------------------------------------------------------------------------
    def agent_card(self, base_url: str, grpc_url: str | None = None) -> dict[str, Any]:
        from codetether.a2a.card import build_card

        return build_card(self.card, base_url, grpc_url)

    def extended_card(self, base_url: str, grpc_url: str | None = None) -> dict[str, Any]:
        from codetether.a2a.card import build_card

        if not self.card.extended_card:
            raise ExtendedCardNotConfigured()
        return build_card(self.card, base_url, grpc_url, extended=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every running task: cancel its turn, record it failed with a reason."""
        self._stopping.set()
        with self._lock:
            lives = list(self._live.values())
        for live in lives:
            live.cancel.cancel()
            with live.lock:
                if live.state not in TERMINAL:
                    self._set_status(live, failed_status(live.task, SHUTDOWN_REASON))
        for live in lives:
            live.done.wait(timeout)
        if self.push is not None and hasattr(self.push, "close"):
            self.push.close()

    def live_count(self) -> int:
        with self._lock:
            return len(self._live)

    def _audit(self, actor: str, action: str, task_id: str, outcome: str, **extra: Any) -> None:
        if self.audit is None:
            return
        try:
            self.audit(actor=actor or "anonymous", action=action, resource=f"task:{task_id}",
                       outcome=outcome, task_id=task_id, **extra)
        except Exception:
            log.exception("audit hook failed")


class TaskRun:
    """What an executor sees of its task: the request, a cancel token, and ways to report."""

    def __init__(self, service: A2AService, live: _Live, message: dict[str, Any],
                 metadata: dict[str, Any]) -> None:
        self._service = service
        self._live = live
        self.message = message
        self.metadata = metadata if isinstance(metadata, dict) else {}
        self.task_id: str = live.task["id"]
        self.context_id: str = live.task["contextId"]
        self.cancel: CancelToken = live.cancel
        self.principal = live.principal
        self._artifact_count = 0

    @property
    def store(self) -> TaskStore:
        """The task store (executors keep small per-context records there)."""
        return self._service.store

    @property
    def state(self) -> str:
        with self._live.lock:
            return self._live.state

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def text(self, message: dict[str, Any] | None = None) -> str:
        """The text parts of the user's message, joined."""
        return message_text(message or self.message)

    def agent_message(self, text: str | None = None, parts: list[dict[str, Any]] | None = None
                      ) -> dict[str, Any]:
        return {"messageId": str(uuid.uuid4()), "role": "ROLE_AGENT", "taskId": self.task_id,
                "contextId": self.context_id,
                "parts": parts if parts is not None else [{"text": text or ""}]}

    def status(self, state: str, text: str | None = None,
               metadata: dict[str, Any] | None = None) -> bool:
        status: dict[str, Any] = {"state": state, "timestamp": now_iso()}
        if text is not None:
            status["message"] = self.agent_message(text)
        return self._service._set_status(self._live, status, metadata)

    def working(self, text: str | None = None) -> bool:
        return self.status("TASK_STATE_WORKING", text)

    def complete(self, text: str | None = None) -> bool:
        return self.status("TASK_STATE_COMPLETED", text)

    def fail(self, text: str) -> bool:
        return self.status("TASK_STATE_FAILED", text, {"reason": text})

    def reject(self, text: str) -> bool:
        return self.status("TASK_STATE_REJECTED", text)

    def new_artifact_id(self) -> str:
        self._artifact_count += 1
        return f"{self.task_id}-artifact-{self._artifact_count}"

    def artifact(self, parts: list[dict[str, Any]], artifact_id: str | None = None,
                 name: str | None = None, append: bool = False, last_chunk: bool = False
                 ) -> bool:
        artifact: dict[str, Any] = {"artifactId": artifact_id or self.new_artifact_id(),
                                    "parts": parts}
        if name:
            artifact["name"] = name
        update: dict[str, Any] = {"taskId": self.task_id, "contextId": self.context_id,
                                  "artifact": artifact}
        if append:
            update["append"] = True
        if last_chunk:
            update["lastChunk"] = True
        return self._service._publish(self._live, {"artifactUpdate": update})

    def ask(self, text: str, state: str = "TASK_STATE_INPUT_REQUIRED",
            timeout: float | None = None, metadata: dict[str, Any] | None = None
            ) -> dict[str, Any] | None:
        """Park in input-required and wait for the next message on this task (None when the
        task is cancelled or ends meanwhile, or after ``timeout`` seconds)."""
        if not self.status(state, text, metadata):
            return None
        try:
            answer = self._live.inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if answer is None or self.cancel.cancelled:
            return None
        return answer


# -- helpers ---------------------------------------------------------------------------------
def message_text(message: dict[str, Any]) -> str:
    return "".join(p["text"] for p in message.get("parts", [])
                   if isinstance(p, dict) and isinstance(p.get("text"), str))


def _copy(task: dict[str, Any]) -> dict[str, Any]:
    """A deep enough copy of a task for handing out (parts are never mutated in place)."""
    out = dict(task)
    out["status"] = dict(task["status"])
    out["history"] = list(task.get("history", []))
    out["artifacts"] = [dict(a, parts=list(a.get("parts", []))) for a in task.get("artifacts", [])]
    return out


def _short(state: str) -> str:
    return state.removeprefix("TASK_STATE_").lower().replace("_", "-")


def _status(state: str, live: _Live, text: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"state": state, "timestamp": now_iso()}
    if text:
        status["message"] = {"messageId": str(uuid.uuid4()), "role": "ROLE_AGENT",
                             "taskId": live.task["id"], "contextId": live.task["contextId"],
                             "parts": [{"text": text}]}
    return status


def _merge_artifact(task: dict[str, Any], artifact: dict[str, Any], append: bool) -> None:
    artifacts = task.setdefault("artifacts", [])
    for index, existing in enumerate(artifacts):
        if existing.get("artifactId") == artifact.get("artifactId"):
            if append:
                artifacts[index] = {**existing, "parts": [*existing.get("parts", []),
                                                          *artifact.get("parts", [])]}
            else:
                artifacts[index] = artifact
            return
    artifacts.append(artifact)


def _config(params: dict[str, Any]) -> dict[str, Any]:
    config = params.get("configuration")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InvalidParams("configuration must be an object")
    history = config.get("historyLength")
    if history is not None:
        if isinstance(history, bool) or not isinstance(history, int):
            raise InvalidParams("configuration.historyLength must be an integer")
        _check_history_length(history)
    return config


def _check_history_length(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParams("historyLength must be a non-negative integer")


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if value is None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParams(f"{name} must be an integer")
    return value


def _message(params: Any) -> dict[str, Any]:
    """The request's message, checked enough that executors can trust its shape."""
    if not isinstance(params, dict):
        raise InvalidParams("params must be an object")
    message = params.get("message")
    if not isinstance(message, dict):
        raise InvalidParams("params.message is required and must be an object")
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise InvalidParams("message.messageId is required and must be a non-empty string")
    if message.get("role") not in ("ROLE_USER", "ROLE_AGENT"):
        raise InvalidParams("message.role must be ROLE_USER or ROLE_AGENT")
    parts = message.get("parts")
    if not isinstance(parts, list) or not parts:
        raise InvalidParams("message.parts must be a non-empty array")
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or sum(k in part for k in _PART_KINDS) != 1:
            raise InvalidParams(f"message.parts[{index}] must have exactly one of text, raw, "
                                "url or data")
        if "text" in part and not isinstance(part["text"], str):
            raise InvalidParams(f"message.parts[{index}].text must be a string")
    for key in ("taskId", "contextId"):
        if message.get(key) is not None and not isinstance(message[key], str):
            raise InvalidParams(f"message.{key} must be a string")
    metadata = params.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidParams("metadata must be an object")
    return message


def _direct_reply(executor: Any, message: dict[str, Any]) -> dict[str, Any] | None:
    respond = getattr(executor, "respond", None)
    if respond is None:
        return None
    reply = respond(message)
    if reply is None:
        return None
    reply = dict(reply)
    reply.setdefault("messageId", str(uuid.uuid4()))
    reply.setdefault("role", "ROLE_AGENT")
    if message.get("contextId"):
        reply.setdefault("contextId", message["contextId"])
    return reply


def _public_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


__all__ = ["A2AService", "A2AError", "CardInfo", "TaskRun", "message_text"]
