"""The real TUI in a real terminal (tmux), driven by keys, against the scripted LLM server.

Each test gets a private tmux server (``-L``), so nothing touches a developer's tmux. The screen
is read with ``capture-pane``; a test waits for text to appear with a bounded loop of short
``Event().wait`` pauses — it synchronises on what the terminal shows, the only signal there is.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.cli import ROOT
from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

EXIT_MARK = "__TUI_EXITED__"
DONE_MARK = "__TUI_DONE__"


class Tmux:
    """One detached tmux session running ``python -m codetether.tui`` in a shell wrapper that
    reports the exit code and the terminal modes after the TUI has gone."""

    def __init__(self, cwd: Path, env: dict[str, str], args: tuple[str, ...] = (),
                 width: int = 100, height: int = 30, term: str = "xterm-256color") -> None:
        self.socket = f"ct-{uuid.uuid4().hex[:10]}"
        self.target = "tui"
        full = {**env, "PYTHONPATH": str(ROOT), "TERM": term}
        keep = ("HOME", "PATH", "CODETETHER_DATA_DIR", "CODETETHER_CONFIG", "NO_PROXY", "LANG")
        for name in keep:
            if name in os.environ and name not in full:
                full[name] = os.environ[name]
        full.setdefault("LANG", "C.UTF-8")
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in full.items())
        tui = shlex.join([sys.executable, "-m", "codetether.tui", *args])
        script = (f"export {exports}; {tui}; echo {EXIT_MARK}=$?; "
                  "stty -a | tr ';' '\\n' | grep -E 'intr|icanon|echo '; "
                  f"echo {DONE_MARK}; exec sleep 600")
        self._tmux("new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height),
                   "-c", str(cwd), "sh", "-c", script)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                                capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self._tmux("send-keys", "-t", self.target, *(["-l"] if literal else []), *keys)

    def type(self, text: str) -> None:
        """Type text, then Enter (two sends, like a person)."""
        self.keys(text, literal=True)
        self.keys("Enter")

    def screen(self, escapes: bool = False) -> str:
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.target)

    def flags(self, *names: str) -> dict[str, str]:
        fmt = " ".join(f"#{{{n}}}" for n in names)
        values = self._tmux("display-message", "-p", "-t", self.target, fmt).split()
        return dict(zip(names, values, strict=True))

    def wait_for(self, text: str, timeout: float = 20.0, gone: bool = False) -> str:
        """The screen once ``text`` is on it (or, with ``gone``, off it)."""
        pause = threading.Event()
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if (text in screen) != gone:
                return screen
            pause.wait(0.1)
        state = "still on" if gone else "not on"
        raise AssertionError(f"{text!r} {state} the screen after {timeout}s:\n{screen}")

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", self.target, "-x", str(width), "-y", str(height))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10)


@pytest.fixture
def llm():
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "hello.py").write_text("print('hi')\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=ws, check=True)
    return ws


@pytest.fixture
def tui_factory(llm, workspace):
    opened: list[Tmux] = []

    def start(*args: str, **kwargs) -> Tmux:
        env = {"OPENAI_API_KEY": "sk-test-TUI-0123456789", "OPENAI_BASE_URL": llm.url + "/v1",
               "CODETETHER_DEFAULT_MODEL": "openai/gpt-4o"}
        term = Tmux(workspace, env, args or (str(workspace),), **kwargs)
        opened.append(term)
        term.wait_for("openai/gpt-4o")
        return term

    yield start
    for term in opened:
        term.close()


def quit_tui(term: Tmux) -> str:
    term.keys("C-c")
    term.keys("C-c")
    return term.wait_for(DONE_MARK)


def test_prompt_streams_a_markdown_answer(tui_factory, llm):
    llm.enqueue(Turn(text="# Result\n\nThe answer is **forty-two**.\n\n- first\n- second\n"))
    term = tui_factory()
    term.type("what is the answer?")
    screen = term.wait_for("forty-two")
    assert "› what is the answer?" in screen
    assert "Result" in screen and "# Result" not in screen  # rendered, not raw
    assert "**" not in screen
    assert "• first" in screen and "• second" in screen
    assert "↑11 ↓7" in screen  # tokens from the scripted usage, in the status bar
    assert "⎇ main" in screen and "· what is the" in screen.splitlines()[-1]  # title
    assert llm.requests[0].body["messages"][-1]["content"] == "what is the answer?"
    quit_tui(term)


def test_alt_enter_makes_a_multi_line_prompt_and_up_recalls_it(tui_factory, llm):
    llm.enqueue(Turn(text="got two lines"))
    term = tui_factory()
    term.keys("line one", literal=True)
    term.keys("M-Enter")
    term.keys("line two", literal=True)
    term.wait_for("line two")
    term.keys("Enter")
    term.wait_for("got two lines")
    assert llm.requests[0].body["messages"][-1]["content"] == "line one\nline two"
    term.keys("Up")
    screen = term.wait_for("─\n› line one\n")  # recalled into the prompt box
    assert screen.splitlines()[-2].strip() == "line two"
    term.keys("C-c")  # clears the prompt
    term.wait_for("─\n›\n")
    quit_tui(term)


def test_tool_call_needs_approval_and_A_allows_it(tui_factory, llm, workspace):
    llm.enqueue(Turn(text="Writing.", tool_calls=[ToolCall("write", {"path": "note.txt",
                                                                     "content": "hi\n"})]),
                Turn(text="Wrote note.txt."))
    term = tui_factory()
    term.type("write a note")
    screen = term.wait_for("[Shift+A] always")
    assert "allow write" in screen and "note.txt" in screen
    assert not (workspace / "note.txt").exists()
    term.keys("a")
    screen = term.wait_for("Wrote note.txt.")
    assert (workspace / "note.txt").read_text() == "hi\n"
    assert "⚙ write" in screen and "✓" in screen
    assert "write: allowed once" in screen
    quit_tui(term)


def test_D_denies_a_tool_call(tui_factory, llm, workspace):
    llm.enqueue(Turn(tool_calls=[ToolCall("bash", {"command": "touch made.txt"})]),
                Turn(text="Understood, not running it."))
    term = tui_factory()
    term.type("make a file")
    term.wait_for("allow bash")
    term.keys("D")
    term.wait_for("Understood, not running it.")
    assert not (workspace / "made.txt").exists()
    tool_message = [m for m in llm.requests[1].body["messages"] if m["role"] == "tool"][-1]
    assert "rejected" in tool_message["content"]
    quit_tui(term)


def test_sessions_picker_shows_and_resumes_a_session(tui_factory, llm):
    llm.enqueue(Turn(text="Remembered: the colour is teal."),
                Turn(text="A fresh start."),
                Turn(text="It was teal."))
    term = tui_factory()
    term.type("remember the colour teal")
    term.wait_for("Remembered: the colour is teal.")
    term.type("/new")
    term.wait_for("new session")
    term.type("something else entirely")
    term.wait_for("A fresh start.")
    term.type("/sessions")
    screen = term.wait_for("search:")
    assert "remember the colour teal" in screen and "something else entirely" in screen
    assert screen.count(" msgs") == 2
    term.keys("teal", literal=True)
    screen = term.wait_for("search: teal")
    assert screen.count(" msgs") == 1  # the search left one session in the list
    term.keys("Enter")
    screen = term.wait_for("resumed session")
    assert "Remembered: the colour is teal." in screen
    assert "A fresh start." not in screen
    assert "· remember the" in screen.splitlines()[-1]  # its title, in the status bar
    term.type("what colour?")
    term.wait_for("It was teal.")
    history = [m.get("content") for m in llm.requests[-1].body["messages"]]
    assert "remember the colour teal" in history and "something else entirely" not in history
    quit_tui(term)


def test_model_picker_switches_the_model(tui_factory, llm):
    llm.enqueue(Turn(text="answered by mini"))
    term = tui_factory()
    term.type("/model")
    screen = term.wait_for("providers with credentials")
    assert "openai/gpt-4o-mini" in screen
    term.keys("4o-mini", literal=True)
    term.wait_for("openai/gpt-4.1", gone=True)
    term.keys("Enter")
    screen = term.wait_for("model: openai/gpt-4o-mini")
    assert screen.splitlines()[-1].lstrip().startswith("openai/gpt-4o-mini")
    term.type("hello")
    term.wait_for("answered by mini")
    assert llm.requests[-1].body["model"] == "gpt-4o-mini"
    quit_tui(term)


def test_ctrl_c_stops_a_turn_and_the_next_prompt_works(tui_factory, llm):
    llm.enqueue(Turn(text="This answer is being held mid-way by the server", hold_after=4),
                Turn(text="Back after the cancel."))
    term = tui_factory()
    term.type("start something long")
    assert llm.holding.wait(20)
    term.wait_for("● working")
    term.keys("C-c")
    screen = term.wait_for("turn cancelled")
    assert "● working" not in screen.splitlines()[-1]
    llm.release()
    term.type("and now?")
    term.wait_for("Back after the cancel.")
    quit_tui(term)


def test_resize_reflows_the_screen(tui_factory, llm):
    llm.enqueue(Turn(text="word " * 60))
    term = tui_factory()
    term.type("long answer please")
    term.wait_for("word word")
    term.resize(80, 24)
    pause = threading.Event()
    for _ in range(50):  # the pane reports the new size once the TUI has redrawn for it
        lines = term.screen().splitlines()
        if len(lines) == 24 and "openai/gpt-4o" in lines[-1]:
            break
        pause.wait(0.1)
    screen = term.screen()
    lines = screen.splitlines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert "openai/gpt-4o" in lines[-1] and lines[-2].startswith("›")
    term.resize(120, 40)
    term.wait_for("long answer please")
    quit_tui(term)


def test_quitting_leaves_the_terminal_clean(tui_factory):
    term = tui_factory()
    term.keys("some text", literal=True)
    term.keys("C-c")  # clears the prompt
    term.wait_for("some text", gone=True)
    screen = quit_tui(term)
    assert f"{EXIT_MARK}=0" in screen
    assert "[session:" in screen
    stty = screen.split(EXIT_MARK, 1)[1]
    assert "intr = ^C" in stty and "-icanon" not in stty and "-echo " not in stty
    flags = term.flags("alternate_on", "cursor_flag", "mouse_any_flag", "keypad_cursor_flag")
    assert flags == {"alternate_on": "0", "cursor_flag": "1", "mouse_any_flag": "0",
                     "keypad_cursor_flag": "0"}
    raw = term.screen(escapes=True)
    leftovers = [line for line in raw.splitlines() if "\x1b" in line]
    assert not leftovers, leftovers


def test_sixteen_colours_and_80x24(tui_factory, llm):
    llm.enqueue(Turn(text="small screen ok"))
    term = tui_factory(width=80, height=24, term="xterm")
    term.type("hi")
    term.wait_for("small screen ok")
    raw = term.screen(escapes=True)
    assert "\x1b[" in raw and "38;5;" not in raw and "48;5;" not in raw
    quit_tui(term)


def test_a_user_theme_is_picked_up_again_when_its_file_changes(tui_factory, tmp_path):
    folder = Path(os.environ["HOME"]) / ".config" / "codetether-agent" / "themes"
    folder.mkdir(parents=True)
    theme = folder / "mine.toml"
    theme.write_text('[colors]\nstatus_bg = "#ff0000"\n')
    term = tui_factory()
    term.type("/theme mine")
    term.wait_for("theme: mine")
    pause = threading.Event()
    for _ in range(100):
        if "48;5;196" in term.screen(escapes=True):  # the status bar, red
            break
        pause.wait(0.1)
    assert "48;5;196" in term.screen(escapes=True)
    theme.write_text('[colors]\nstatus_bg = "#00ff00"\n')
    mtime = theme.stat().st_mtime + 2
    os.utime(theme, (mtime, mtime))
    for _ in range(100):  # polled once a second by the TUI
        if "48;5;46" in term.screen(escapes=True):
            break
        pause.wait(0.1)
    raw = term.screen(escapes=True)
    assert "48;5;46" in raw and "48;5;196" not in raw
    quit_tui(term)


def test_bad_session_id_is_one_line(llm, workspace):
    env = {"OPENAI_API_KEY": "sk-test-TUI-0123456789", "OPENAI_BASE_URL": llm.url + "/v1"}
    term = Tmux(workspace, env, ("-s", "ses_doesnotexist"))
    try:
        screen = term.wait_for(DONE_MARK)
        assert f"{EXIT_MARK}=1" in screen
        errors = [line for line in screen.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in screen
    finally:
        term.close()
