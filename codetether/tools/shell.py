"""The ``bash`` tool, and the read-only command check the permission engine uses.

A command runs in its own process group with stdin closed, so it can neither wait for a person
at a keyboard nor leave children behind when it times out or is cancelled: the whole group is
killed, grandchildren included. Output is read by a thread into a bounded buffer that keeps the
first and the last part (the start says what ran, the end says how it finished), so a command
printing gigabytes costs a fixed amount of memory.
"""

from __future__ import annotations

import codecs
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, require

MAX_TIMEOUT = 600.0
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
# after the shell exits, how long background children may keep the output pipe open
PIPE_DRAIN = 1.0


class HeadTailBuffer:
    """Keeps the first ``limit/2`` and the last ``limit/2`` bytes written; counts the rest."""

    def __init__(self, limit: int) -> None:
        self.head_limit = max(1, limit // 2)
        self.tail_limit = max(1, limit - self.head_limit)
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.dropped = 0
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            room = self.head_limit - len(self.head)
            if room > 0:
                self.head += data[:room]
                data = data[room:]
            if not data:
                return
            self.tail.append(data)
            self.tail_size += len(data)
            while self.tail_size > self.tail_limit:
                extra = self.tail_size - self.tail_limit
                first = self.tail[0]
                if len(first) <= extra:
                    self.tail.popleft()
                    self.tail_size -= len(first)
                    self.dropped += len(first)
                else:
                    self.tail[0] = first[extra:]
                    self.tail_size -= extra
                    self.dropped += extra

    def text(self) -> str:
        with self.lock:
            head = bytes(self.head).decode("utf-8", "replace")
            tail = b"".join(self.tail).decode("utf-8", "replace")
            dropped = self.dropped
        if not dropped:
            return head + tail
        return (f"{head}\n\n[... {dropped} bytes of output dropped from the middle; redirect "
                f"the output to a file and read parts of it to see everything ...]\n\n{tail}")


def _pump(stream: IO[bytes], buffer: HeadTailBuffer,
          on_text: Callable[[str], None] | None) -> None:
    """Reader thread: copy the merged stdout/stderr into the buffer until EOF."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    fd = stream.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        buffer.write(chunk)
        if on_text is not None:
            text = decoder.decode(chunk)
            try:
                if text:
                    on_text(text)
            except Exception:  # a broken progress listener must not stop draining the pipe
                on_text = None


def _shell() -> list[str]:
    for candidate in ("/bin/bash", shutil.which("bash"), "/bin/sh", shutil.which("sh")):
        if candidate and os.path.exists(candidate):
            return [candidate, "-c"]
    raise ToolError("no shell found (looked for bash and sh)")


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _timeout_arg(args: dict[str, Any], ctx: ToolContext) -> float:
    value = args.get("timeout")
    if value is None:
        return min(MAX_TIMEOUT, float(ctx.limits.bash_timeout))
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ToolError(f"argument 'timeout' must be a positive number of seconds, got {value!r}")
    return min(MAX_TIMEOUT, float(value))


class BashTool(Tool):
    name = "bash"
    description = (
        "Run a shell command (bash -c) in the workspace and return its combined stdout/stderr "
        "and exit code. Non-interactive: stdin is closed, so never run commands that wait for "
        "input (use flags like --yes, or pipe input explicitly). Long output keeps the start and "
        "the end. Default timeout 120 s (max 600); on timeout the whole process tree is killed. "
        "Prefer the read/grep/glob tools over cat/grep/find for looking at files.")
    parameters = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "the command line to run"},
            "cwd": {"type": "string", "description": "working directory (default: workspace)"},
            "timeout": {"type": "number", "description": "seconds before it is killed"},
            "description": {"type": "string",
                            "description": "5-10 words saying what the command does"},
        },
        "required": ["command"],
    }
    read_only = False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        command = require(args, "command", str)
        if not command.strip():
            raise ToolError("argument 'command' is empty")
        cwd = self._cwd(args, ctx)
        timeout = _timeout_arg(args, ctx)
        if ctx.cancel.cancelled:
            raise ToolError("cancelled before the command started", cancelled=True)
        return _Run(command, cwd, timeout, ctx).execute()

    @staticmethod
    def _cwd(args: dict[str, Any], ctx: ToolContext) -> Path:
        raw = args.get("cwd")
        if raw is None or raw == "":
            return ctx.workspace
        if not isinstance(raw, str):
            raise ToolError("argument 'cwd' must be a string")
        path = ctx.resolve_path(raw)
        if not path.is_dir():
            raise ToolError(f"cwd {raw} is not a directory")
        return path


class _Run:
    """One command from start to result; the state the cancel callback and waits share."""

    def __init__(self, command: str, cwd: Path, timeout: float, ctx: ToolContext) -> None:
        self.command = command
        self.cwd = cwd
        self.timeout = timeout
        self.ctx = ctx
        self.buffer = HeadTailBuffer(ctx.limits.output_bytes)
        self.wake = threading.Event()  # set when the shell exits or on cancel
        self.proc: subprocess.Popen[bytes] | None = None
        self.cancel_fired = False

    def _env(self) -> dict[str, str]:
        hidden = secret_env_names()
        env = {k: v for k, v in os.environ.items() if k not in hidden}
        env.update(CODETETHER="1", PAGER="cat", GIT_PAGER="cat", TERM="dumb")
        return env

    def _on_text(self) -> Callable[[str], None] | None:
        emit = self.ctx.emit
        if emit is None:
            return None
        return lambda text: emit("tool.output", {"tool": "bash", "text": text})

    def execute(self) -> ToolResult:
        started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                [*_shell(), self.command], cwd=self.cwd, env=self._env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)
        except OSError as exc:
            raise ToolError(f"could not start the shell: {exc}")
        proc = self.proc
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, self.buffer, self._on_text()),
                                  name="bash-output", daemon=True)
        reader.start()
        waiter = threading.Thread(target=self._wait_exit, name="bash-wait", daemon=True)
        waiter.start()
        unregister = self.ctx.cancel.on_cancel(self._cancel)
        try:
            finished = self.wake.wait(self.timeout)
            cancelled = self.cancel_fired
            timed_out = not finished and not cancelled
            notes = []
            if timed_out or cancelled:
                self._kill(reader)
                why = "was cancelled" if cancelled else f"timed out after {self.timeout:g}s"
                notes.append(f"[command {why}; its whole process group was killed]")
            else:
                reader.join(PIPE_DRAIN)
                if reader.is_alive():
                    self._kill(reader)
                    notes.append("[background processes kept the output open after the "
                                 "command exited and were stopped; to leave one running, "
                                 "redirect its output: `cmd > log 2>&1 &`]")
        finally:
            unregister()
        reader.join(KILL_GRACE)
        proc.stdout.close()
        code = proc.wait()
        return self._result(code, notes, timed_out, cancelled, started)

    def _wait_exit(self) -> None:
        assert self.proc is not None
        self.proc.wait()
        self.wake.set()

    def _cancel(self) -> None:
        """Runs on the cancelling thread: start the kill at once, let the tool thread finish."""
        self.cancel_fired = True
        if self.proc is not None:
            _signal_group(self.proc.pid, signal.SIGTERM)
        self.wake.set()

    def _kill(self, reader: threading.Thread) -> None:
        """SIGTERM the group, give it ``KILL_GRACE`` to exit and close the pipe, then SIGKILL
        whatever is left (grandchildren that ignore SIGTERM included)."""
        assert self.proc is not None
        pgid = self.proc.pid
        deadline = time.monotonic() + KILL_GRACE
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.proc.wait(KILL_GRACE)
        except subprocess.TimeoutExpired:
            pass
        reader.join(max(0.0, deadline - time.monotonic()))
        _signal_group(pgid, signal.SIGKILL)

    def _result(self, code: int, notes: list[str], timed_out: bool, cancelled: bool,
                started: float) -> ToolResult:
        output = self.buffer.text().rstrip("\n") or "(no output)"
        status = f"exit code: {code}"
        if code < 0:
            try:
                status += f" (killed by {signal.Signals(-code).name})"
            except ValueError:
                pass
        text = "\n".join([output, "", *notes, status])
        meta = {"exit_code": code, "timed_out": timed_out, "cancelled": cancelled,
                "duration_ms": int((time.monotonic() - started) * 1000),
                "output_truncated": self.buffer.dropped > 0}
        return ToolResult(text, code == 0 and not timed_out and not cancelled, meta)


# ---- read-only classification --------------------------------------------------------------

# commands that only read, whatever their (non-redirect) arguments
_ALWAYS_READ = frozenset({
    "ls", "cat", "head", "tail", "wc", "pwd", "echo", "printf", "grep", "egrep", "fgrep", "rg",
    "which", "whoami", "id", "uname", "file", "stat", "du", "df", "tree", "basename", "dirname",
    "realpath", "readlink", "cut", "tr", "nl", "diff", "cmp", "comm", "md5sum", "sha1sum",
    "sha256sum", "sha512sum", "true", "false", "test", "seq", "column", "printenv", "type",
    "jq", "od", "hexdump", "strings", "ps", "uptime", "free", "nproc", "locale", "tac", "rev",
    "fold", "expand", "paste", "join", "base64", "cksum", "ag", "fd",
})
# `X --version` / `X -V` style probes
_VERSION_ONLY = frozenset({
    "python", "python3", "node", "npm", "npx", "pnpm", "yarn", "deno", "bun", "go", "cargo",
    "rustc", "java", "javac", "ruby", "gem", "pip", "pip3", "gcc", "g++", "clang", "make",
    "cmake", "docker", "kubectl", "uv", "poetry", "pytest", "ruff", "mypy", "tsc", "dotnet",
    "php", "perl", "swift", "bash", "sh", "zsh", "git", "terraform", "helm",
})
_GIT_READ = frozenset({
    "status", "log", "diff", "show", "blame", "rev-parse", "ls-files", "ls-tree", "describe",
    "shortlog", "grep", "cat-file", "reflog", "whatchanged", "rev-list", "merge-base",
    "show-ref", "count-objects", "name-rev", "version", "help",
})
_GIT_BRANCH_FLAGS = frozenset({
    "-a", "-r", "-v", "-vv", "--list", "-l", "--all", "--remotes", "--show-current",
    "--merged", "--no-merged", "--contains", "--no-contains", "--verbose", "--no-color",
    "--color", "--sort=-committerdate",
})
_FIND_WRITES = frozenset({"-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint",
                          "-fprint0", "-fprintf", "-fls"})
_SEPARATORS = frozenset({";", "&&", "||", "&", ";;", "(", ")", "((", "))", "\n"})
_WRITE_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>"})
_DUP_REDIRECTS = frozenset({">&", "<&"})


def secret_env_names() -> frozenset[str]:
    """Env vars the shell never sees: the LLM provider keys and tokens CodeTether itself runs
    on. A command the model writes (``env``, ``echo $OPENAI_API_KEY``) would otherwise put them
    into the transcript and send them to the provider. General cloud credentials (``AWS_*``)
    stay: the user's own tools may need them."""
    from codetether.providers.registry import SPECS

    names = {"VAULT_TOKEN", "CODETETHER_AUTH_TOKEN", "CODETETHER_A2A_TOKEN",
             "CODETETHER_A2A_PEER_TOKEN", "CODETETHER_BUS_TOKEN"}
    for spec in SPECS:
        names.update(spec.env_vars)
    return frozenset(names)


def is_read_only_command(command: str) -> bool:
    """True only for simple commands that cannot change anything: the permission engine may
    run them without asking. Anything unknown or complicated is False (ask)."""
    if not isinstance(command, str) or not command.strip():
        return False
    if any(mark in command for mark in ("`", "$(", "<(", ">(", "\n", "\r")):
        return False
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return False
    segments: list[list[str]] = [[]]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token in _SEPARATORS:
            return False
        if token in ("|", "|&"):
            segments.append([])
        elif token.isdigit() and nxt is not None and (nxt in _WRITE_REDIRECTS or
                                                      nxt in _DUP_REDIRECTS or nxt == "<"):
            pass  # a file descriptor number in front of a redirection
        elif token in _WRITE_REDIRECTS:
            if nxt != "/dev/null":
                return False
            i += 1
        elif token in _DUP_REDIRECTS:
            if nxt is None or not (nxt.isdigit() or nxt == "-"):
                return False
            i += 1
        elif token in ("<", "<<<"):
            if nxt is None:
                return False
            i += 1
        elif token and token[0] in "<>|&;()":
            return False  # any other operator (<<, <>, ...)
        else:
            segments[-1].append(token)
        i += 1
    return all(seg and _read_only_words(seg) for seg in segments)


def _read_only_words(words: list[str]) -> bool:
    name, args = words[0], words[1:]
    if "=" in name or "/" in name:
        return False  # VAR=value prefixes, ./scripts: unknown effects
    if name in _VERSION_ONLY and args in (["--version"], ["-V"], ["version"]):
        return True
    if name == "git":
        return _git_read_only(args)
    if name == "find":
        return not any(a in _FIND_WRITES for a in args)
    if name in ("env", "hostname"):
        return not args
    if name == "date":
        return not any(a in ("-s", "--set") or a.startswith("--set=") for a in args)
    if name == "sort":
        return not any(a == "-o" or a.startswith(("-o", "--output")) for a in args)
    if name == "uniq":
        return len([a for a in args if not a.startswith("-")]) <= 1
    return name in _ALWAYS_READ


def _git_read_only(args: list[str]) -> bool:
    rest = list(args)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "-C" and rest:
            rest.pop(0)
        elif flag not in ("--no-pager", "--no-optional-locks", "-P"):
            return False  # -c key=value can run programs (core.fsmonitor, aliases...)
    if not rest:
        return False
    sub, sub_args = rest[0], rest[1:]
    if any(a.startswith(("--output", "--ext-diff")) for a in sub_args):
        return False
    if sub in _GIT_READ:
        return True
    if sub == "branch":
        return all(a in _GIT_BRANCH_FLAGS for a in sub_args)
    if sub in ("tag", "stash", "remote", "worktree"):
        allowed = {"tag": ("-l", "--list"), "stash": ("list", "show"),
                   "remote": ("-v", "--verbose", "show", "get-url"), "worktree": ("list",)}[sub]
        if not sub_args:
            return sub != "stash"  # a bare `git stash` stashes the changes away
        return sub_args[0] in allowed
    if sub == "config":
        return bool(sub_args) and sub_args[0] in ("--get", "--list", "-l", "--get-all")
    return False
