"""``codetether run "prompt"``: one prompt, the answer streamed to stdout.

This is the single-call form; the agent-core issue puts the tool loop and sessions behind the
same command. Output formats: ``default`` (answer text on stdout), ``jsonl`` (one event per
line as it happens) and ``json`` (one object at the end).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from codetether.core.config import load_config
from codetether.core.errors import CodetetherError, UsageError
from codetether.providers import base
from codetether.providers.resolve import get_provider


def read_prompt(words: list[str]) -> str:
    text = sys.stdin.read() if words == ["-"] else " ".join(words)
    if not text.strip():
        raise UsageError("the prompt is empty", 'pass it as an argument: codetether run "..."')
    return text


class Printer:
    """Writes events in the chosen format; results to stdout, everything else to stderr."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.text: list[str] = []

    def emit(self, kind: str, **data) -> None:
        if self.fmt == "jsonl":
            sys.stdout.write(json.dumps({"type": kind, **data}) + "\n")
            sys.stdout.flush()

    def on_event(self, event: base.StreamEvent) -> None:
        if isinstance(event, base.TextDelta):
            self.text.append(event.text)
            if self.fmt == "default":
                sys.stdout.write(event.text)
                sys.stdout.flush()
            self.emit("text.delta", text=event.text)
        elif isinstance(event, base.ThinkingDelta) and event.text:
            self.emit("thinking.delta", text=event.text)
        elif isinstance(event, base.Usage):
            self.emit("usage", **_usage_json(event))


def _usage_json(usage: base.Usage) -> dict:
    data = asdict(usage)
    data.pop("type", None)
    return data


def run(args: argparse.Namespace) -> int:
    prompt = read_prompt(args.message)
    cfg = load_config()
    if cfg.ignored_project_file:
        print(f"note: ignoring {cfg.ignored_project_file} until you run "
              "`codetether config project trust`", file=sys.stderr)
    provider, resolved = get_provider(args.model, cfg)
    printer = Printer(args.format)
    printer.emit("run.started", model=resolved.ref)
    request = base.ChatRequest(model=resolved.model, messages=[base.Message.user(prompt)],
                               system=args.system or "", max_tokens=args.max_tokens)
    started = time.monotonic()
    usage = base.Usage()
    try:
        for event in provider.stream(request):
            if isinstance(event, base.Usage):
                usage = usage.add(event)
            printer.on_event(event)
    except CodetetherError as exc:
        _finish_partial(printer)
        printer.emit("run.failed", error=exc.one_line(), response="".join(printer.text))
        if args.format == "json":
            print(json.dumps({"ok": False, "error": exc.one_line(),
                              "response": "".join(printer.text), "model": resolved.ref}))
        raise
    _finish_partial(printer)
    result = {"response": "".join(printer.text), "model": resolved.ref,
              "usage": _usage_json(usage), "duration_ms": int((time.monotonic() - started) * 1000)}
    printer.emit("run.completed", **result)
    if args.format == "json":
        print(json.dumps({"ok": True, **result}))
    return 0


def _finish_partial(printer: Printer) -> None:
    if printer.fmt == "default" and printer.text and not printer.text[-1].endswith("\n"):
        sys.stdout.write("\n")
        sys.stdout.flush()
