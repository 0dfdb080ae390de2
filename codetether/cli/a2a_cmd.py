"""``codetether a2a card|send|get|cancel URL ...``: talk to any A2A agent (v1.0 or v0.3).

stdout gets the result (the answer's text, or JSON with ``--json``; with ``--stream --json``
one StreamResponse per line); progress (task state changes) goes to stderr. A failed or
rejected task exits 1. The bearer token comes from ``--token`` or ``CODETETHER_A2A_TOKEN``.
``--transport auto|jsonrpc|grpc`` picks the binding (auto: the card's JSON-RPC interface, else
its gRPC one); a gRPC-only agent without an HTTP card is reached as ``grpc://host:port`` (or
``host:port`` with ``--transport grpc``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from codetether.core.errors import UsageError


def run(args: argparse.Namespace) -> int:
    from codetether.a2a.client import A2AClient

    action = getattr(args, "a2a_action", None)
    actions = {"card": _card, "send": _send, "get": _get, "cancel": _cancel}
    if action not in actions:
        raise UsageError(f"unknown a2a action {action!r}", "use card, send, get or cancel")
    token = getattr(args, "token", None) or os.environ.get("CODETETHER_A2A_TOKEN") or None
    client = A2AClient(args.url, token=token, dialect=getattr(args, "dialect", None) or "auto",
                       timeout=float(getattr(args, "timeout", None) or 60.0),
                       transport=getattr(args, "transport", None) or "auto")
    try:
        return actions[action](client, args)
    finally:
        client.close()


def _card(client: Any, args: argparse.Namespace) -> int:
    card = client.card()
    if getattr(args, "json", False):
        _print_json(client.raw_card or card)
        return 0
    print(f"{card.get('name', '?')} {card.get('version', '')}".rstrip())
    if card.get("description"):
        print(card["description"])
    for iface in card.get("supportedInterfaces") or []:
        print(f"  interface  {iface.get('protocolBinding', '?'):<9} "
              f"v{iface.get('protocolVersion', '?'):<6} {iface.get('url', '')}")
    caps = card.get("capabilities") or {}
    flags = [name for name in ("streaming", "pushNotifications", "extendedAgentCard")
             if caps.get(name)]
    print(f"  capabilities  {', '.join(flags) or 'none'}")
    for skill in card.get("skills") or []:
        print(f"  skill  {skill.get('id', '?')}: {skill.get('description') or skill.get('name')}")
    if card.get("securitySchemes"):
        print(f"  security  {', '.join(card['securitySchemes'])}")
    return 0


def _send(client: Any, args: argparse.Namespace) -> int:
    message = getattr(args, "message", None)
    if not message:
        raise UsageError("a2a send needs a message", 'e.g. codetether a2a send URL "hello"')
    context_id = getattr(args, "context_id", None)
    task_id = getattr(args, "task_id", None)
    if getattr(args, "stream", False):
        return _send_stream(client, message, context_id, task_id, getattr(args, "json", False))
    result = client.send(message, context_id=context_id, task_id=task_id)
    return _print_result(result, getattr(args, "json", False))


def _send_stream(client: Any, message: str, context_id: str | None, task_id: str | None,
                 as_json: bool) -> int:
    from codetether.a2a.dialects import state_to_v03

    state = ""
    wrote_text = False
    for event in client.stream(message, context_id=context_id, task_id=task_id):
        if as_json:
            print(json.dumps(event, ensure_ascii=False), flush=True)
        if "task" in event:
            state = _state(event["task"])
            _progress(event["task"].get("id", ""), state)
        elif "statusUpdate" in event:
            state = _state(event["statusUpdate"])
            _progress(event["statusUpdate"].get("taskId", ""), state)
        elif "artifactUpdate" in event and not as_json:
            text = _parts_text((event["artifactUpdate"].get("artifact") or {}).get("parts"))
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
                wrote_text = True
        elif "message" in event and not as_json:
            print(_parts_text(event["message"].get("parts")))
    if wrote_text:
        sys.stdout.write("\n")
    return 1 if state_to_v03(state) in ("failed", "rejected") else 0


def _get(client: Any, args: argparse.Namespace) -> int:
    return _print_result({"task": client.get(_task_id(args))}, getattr(args, "json", False))


def _cancel(client: Any, args: argparse.Namespace) -> int:
    task = client.cancel(_task_id(args))
    if getattr(args, "json", False):
        _print_json(task)
    else:
        print(f"{task.get('id', '')} {_short_state(_state(task))}")
    return 0


def _task_id(args: argparse.Namespace) -> str:
    task_id = getattr(args, "task_id", None)
    if not task_id:
        raise UsageError("a task id is needed", "e.g. codetether a2a get URL TASK_ID")
    return str(task_id)


def _print_result(result: dict[str, Any], as_json: bool) -> int:
    from codetether.a2a.client import task_text
    from codetether.a2a.dialects import state_to_v03

    if as_json:
        _print_json(result)
    else:
        text = task_text(result)
        if text:
            print(text)
    if "task" not in result:
        return 0
    state = _state(result["task"])
    if not as_json:
        print(f"task {result['task'].get('id', '')}: {_short_state(state)}", file=sys.stderr)
    return 1 if state_to_v03(state) in ("failed", "rejected") else 0


def _state(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("state") or "")


def _short_state(state: str) -> str:
    from codetether.a2a.dialects import state_to_v03

    return state_to_v03(state)


def _progress(task_id: str, state: str) -> None:
    print(f"[{task_id}] {_short_state(state)}", file=sys.stderr, flush=True)


def _parts_text(parts: list[dict[str, Any]] | None) -> str:
    return "".join(p.get("text", "") for p in parts or [] if "text" in p)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))
