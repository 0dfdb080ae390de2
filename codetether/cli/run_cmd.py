"""``codetether run "prompt"``: the agent works on one prompt in this directory, then exits.

Output: ``default`` streams the answer to stdout and tool activity to stderr; ``jsonl`` prints
one event per line as it happens; ``json`` prints one object at the end. Exit 0 when the turn
ends, 1 on failure, 130 when interrupted (Ctrl-C cancels the running turn; the session stays
resumable with ``-c``).
"""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from codetether.agent.events import Event
from codetether.core.errors import CodetetherError, UsageError
from codetether.providers import base

MAX_ATTACHMENT_BYTES = 512 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def read_prompt(words: list[str]) -> str:
    text = sys.stdin.read() if words == ["-"] else " ".join(words)
    if not text.strip():
        raise UsageError("the prompt is empty", 'pass it as an argument: codetether run "..."')
    return text


def attachments(files: list[str]) -> list[base.Part]:
    """``-f FILE``: text files inline (tagged with their path), images as image parts."""
    parts: list[base.Part] = []
    for name in files:
        path = Path(name).expanduser()
        if not path.is_file():
            raise UsageError(f"cannot attach {name}: no such file", "check the path after -f")
        data = path.read_bytes()
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise UsageError(f"cannot attach {name}: {len(data)} bytes is over the "
                             f"{MAX_ATTACHMENT_BYTES}-byte limit", "attach a smaller file")
        media = mimetypes.guess_type(path.name)[0] or ""
        if media in IMAGE_TYPES:
            parts.append(base.ImagePart(media, base64.b64encode(data).decode("ascii")))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"cannot attach {name}: not text or a png/jpeg/gif/webp image",
                             "attach a text file or an image") from None
        parts.append(base.TextPart(f'<file path="{path}">\n{text}\n</file>'))
    return parts


class Printer:
    """Turns agent events into output; results on stdout, activity on stderr."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.ends_with_newline = True
        self._lock = threading.Lock()  # tools emit from their own threads

    def write_json(self, kind: str, **data: Any) -> None:
        sys.stdout.write(json.dumps({"type": kind, **data}, default=str) + "\n")
        sys.stdout.flush()

    def __call__(self, event: Event) -> None:
        if event.type in ("turn.started", "turn.finished"):
            return  # run.started / run.completed carry the same facts
        with self._lock:
            if self.fmt == "jsonl":
                self.write_json(event.type, **event.data)
            elif self.fmt == "default":
                self._human(event)

    def _human(self, event: Event) -> None:
        data = event.data
        if event.type == "text.delta":
            sys.stdout.write(data["text"])
            sys.stdout.flush()
            self.ends_with_newline = data["text"].endswith("\n")
        elif event.type == "tool.started":
            self._newline()
            print(f"→ {data['name']} {_args_summary(data['args'])}".rstrip(), file=sys.stderr)
        elif event.type == "tool.finished":
            mark = "✓" if data["success"] else "✗"
            first = "" if data["success"] else ": " + (data["output"].strip().splitlines()
                                                        or [""])[-1][:160]
            print(f"  {mark} {data['name']} ({data['duration_ms']} ms){first}", file=sys.stderr)
        elif event.type == "compaction":
            print(f"· compacted context ({data['pruned_messages']} tool outputs pruned, "
                  f"{data['summarized_messages']} messages summarised)", file=sys.stderr)
        elif event.type == "error" and not data.get("fatal"):  # fatal ones: the CLI's error line
            self._newline()
            print(f"! {data['message']}", file=sys.stderr)

    def _newline(self) -> None:
        if not self.ends_with_newline:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.ends_with_newline = True

    def finish(self) -> None:
        if self.fmt == "default":
            self._newline()


def _args_summary(args: dict[str, Any]) -> str:
    for key in ("command", "path", "pattern", "url", "query", "file_path"):
        if isinstance(args.get(key), str):
            value = args[key].replace("\n", " ")
            return value if len(value) <= 100 else value[:100] + "…"
    return ""


class TerminalApprover:
    """Asks on the terminal: [y] once, [a] always, [n] reject. Reads /dev/tty so that a prompt
    piped on stdin does not answer the question."""

    def __init__(self, tty) -> None:
        self.tty = tty

    def __call__(self, request) -> str:
        subject = f" {request.subject}" if request.subject else ""
        sys.stderr.write(f"\n? allow {request.tool}{subject}  ({request.reason})\n"
                         "  [y] yes once  [a] always (this project)  [n] no: ")
        sys.stderr.flush()
        answer = self.tty.readline().strip().lower()
        return {"y": "once", "yes": "once", "a": "always", "always": "always"}.get(answer,
                                                                                  "reject")

    def ask(self, question: str, options: list[str]) -> str:
        """The ``question`` tool: numbered options, or free text."""
        sys.stderr.write(f"\n? {question}\n")
        for number, option in enumerate(options, 1):
            sys.stderr.write(f"  {number}. {option}\n")
        sys.stderr.write("> ")
        sys.stderr.flush()
        answer = self.tty.readline().strip()
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1]
        return answer


def _approver(fmt: str):
    if fmt != "default" or not sys.stderr.isatty():
        return None
    try:
        return TerminalApprover(open("/dev/tty", encoding="utf-8"))  # noqa: SIM115
    except OSError:
        return None


def run(args: argparse.Namespace) -> int:
    from codetether.agent.setup import build_runtime, open_session

    prompt = read_prompt(args.message)
    parts = attachments(args.file)
    workspace = Path(args.dir or ".").resolve()
    if not workspace.is_dir():
        raise UsageError(f"{workspace} is not a directory", "pass an existing --dir")
    printer = Printer(args.format)
    terminal = _approver(args.format)
    session, store, cfg = open_session(workspace, args.continue_session, args.session)
    if cfg.ignored_project_file:
        print(f"note: ignoring {cfg.ignored_project_file} until you run "
              "`codetether config project trust`", file=sys.stderr)
    agent = build_runtime(
        session=session, store=store, cfg=cfg, workspace=workspace, model=args.model,
        agent_name=args.agent, access_mode="full" if args.yolo else args.access_mode,
        max_steps=args.max_steps, max_tokens=args.max_tokens, on_event=printer,
        approver=terminal, ask_user=terminal.ask if terminal else None)
    if args.format == "jsonl":
        printer.write_json("run.started", session_id=agent.session.id, model=agent.rt.model_ref,
                           agent=agent.rt.profile.name)
    previous = signal.signal(signal.SIGINT, _first_interrupt_cancels(agent.rt.cancel))
    try:
        result = agent.run(prompt, parts)
    except CodetetherError as exc:
        printer.finish()
        _report_failure(args.format, printer, agent.session.id, exc)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    printer.finish()
    summary = {"session_id": agent.session.id, "response": result.response,
               "usage": _usage(result.usage), "cost": round(result.cost, 6),
               "steps": result.steps, "stop_reason": result.stop_reason,
               "model": agent.rt.model_ref}
    if args.format == "jsonl":
        printer.write_json("run.completed", **summary)
    elif args.format == "json":
        print(json.dumps({"ok": result.stop_reason != "cancelled", **summary}))
    _footer(args.format, result)
    return 130 if result.stop_reason == "cancelled" else 0


def _first_interrupt_cancels(cancel):
    """First Ctrl-C: cancel the turn (tools stop, the session is saved). Second: quit now."""
    def handler(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        print("\ncancelling… (Ctrl-C again to quit at once)", file=sys.stderr)
        cancel.cancel()
    return handler


def _report_failure(fmt: str, printer: Printer, session_id: str, exc: CodetetherError) -> None:
    if fmt == "jsonl":
        printer.write_json("run.failed", session_id=session_id, error=exc.one_line())
    elif fmt == "json":
        print(json.dumps({"ok": False, "session_id": session_id, "error": exc.one_line()}))


def _footer(fmt: str, result) -> None:
    if fmt != "default":
        return
    if result.stop_reason == "max_steps":
        print(f"stopped after {result.steps} steps (--max-steps); the work can go on with -c",
              file=sys.stderr)
    elif result.stop_reason == "cancelled":
        print("cancelled; the session is saved", file=sys.stderr)
    print(f'[session: {result.session.id} · continue with: codetether run -c "…"]',
          file=sys.stderr)


def _usage(usage: base.Usage) -> dict[str, int]:
    return {k: v for k, v in usage.__dict__.items() if k != "type"}
