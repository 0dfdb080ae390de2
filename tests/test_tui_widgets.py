"""TUI widgets and the app without a terminal: widgets render to canvases, keys are fed in, and
the app's worker thread runs real turns against the scripted LLM server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urwid

from codetether.tui import dialogs, markdown, themes
from codetether.tui.conversation import (
    AssistantBlock,
    ConversationView,
    ThinkingBlock,
    ToolBlock,
    UserBlock,
)
from codetether.tui.input import History, PasteFilter, PromptInput, complete_path
from codetether.tui.status import SidePanel, StatusBar, StatusInfo, git_branch
from tests.cli import ROOT
from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn


def text_of(widget: urwid.Widget, size: tuple[int, ...]) -> str:
    canvas = widget.render(size, focus=True)
    return "\n".join(line.decode("utf-8").rstrip() for line in canvas.text)


# -- markdown ---------------------------------------------------------------------------------
def test_markdown_blocks():
    blocks = markdown.parse("# Title\n\nSome **bold** and `code`.\n\n- a\n- b\n1. one\n"
                            "> quoted\n\n```python\nx = 1\n```\nafter")
    kinds = [b.kind for b in blocks]
    assert kinds == ["heading", "para", "item", "item", "item", "quote", "code", "para"]
    assert ("bold", "bold") in blocks[1].markup and ("inline.code", "code") in blocks[1].markup
    assert blocks[6].language == "python"


def test_code_is_coloured_by_pygments_and_unclosed_fences_still_render():
    blocks = markdown.parse("```python\ndef f(x):\n    return 'a'")  # still streaming
    assert blocks[-1].kind == "code"
    roles = {role for role, _ in blocks[-1].markup}
    assert {"code.kw", "code.str"} <= roles
    plain = markdown.highlight("whatever", "no-such-language")
    assert plain == [("code", "whatever")]


# -- conversation -----------------------------------------------------------------------------
def test_conversation_streams_an_answer_and_renders_markdown():
    view = ConversationView()
    view.add(UserBlock("explain"))
    for delta in ("## Plan\n\n", "1. read the **code**\n", "2. fix it\n\n```py\n", "x = 1\n"):
        view.stream_text(delta)
    view.refresh()
    screen = text_of(view, (60, 14))
    assert "› explain" in screen and "Plan" in screen and "##" not in screen
    assert "1. read the code" in screen and "x = 1" in screen
    assert isinstance(view.last(), AssistantBlock)


def test_tool_block_shows_status_and_folds_its_output():
    block = ToolBlock("call_1", "bash", {"command": "pytest -q"})
    block.refresh()
    assert "⚙ bash  pytest -q  … running" in text_of(block, (70,))
    output = "\n".join(f"line {n}" for n in range(1, 31))
    block.finish(True, output, 1234)
    block.refresh()
    folded = text_of(block, (70,))
    assert "✓ 1234 ms" in folded and "line 1" in folded and "line 30" not in folded
    assert "30 lines" in folded
    block.toggle()
    assert "line 30" in text_of(block, (70,))
    failed = ToolBlock("call_2", "edit", {"path": "a.py"})
    failed.finish(False, "no match", 5)
    failed.refresh()
    assert "✗ 5 ms" in text_of(failed, (70,))


def test_thinking_is_collapsed_until_unfolded():
    view = ConversationView()
    view.stream_thinking("first I will look ")
    view.stream_thinking("at the tests")
    view.refresh()
    block = view.last()
    assert isinstance(block, ThinkingBlock)
    assert "thinking (7 words)" in text_of(view, (50, 5)) and "tests" not in text_of(view, (50, 5))
    assert view.toggle_focused()
    assert "at the tests" in text_of(view, (50, 5))


def test_conversation_scrolls_and_stops_following():
    view = ConversationView()
    for n in range(40):
        view.add(UserBlock(f"prompt {n}"))
    text_of(view, (40, 10))
    assert "prompt 39" in text_of(view, (40, 10))
    for _ in range(5):
        view.scroll("page up")
    screen = text_of(view, (40, 10))
    assert "prompt 39" not in screen and not view.follow
    view.scroll("end")
    assert view.follow and "prompt 39" in text_of(view, (40, 10))


# -- input ------------------------------------------------------------------------------------
def _prompt(tmp_path: Path, sent: list[str], hints: list[str] | None = None) -> PromptInput:
    return PromptInput(sent.append, tmp_path, History(tmp_path / "hist"),
                       on_hint=(hints.append if hints is not None else None))


def feed(widget: urwid.Widget, keys, size=(60,)) -> list:
    left = []
    for key in keys:
        result = widget.keypress(size, key)
        if result is not None:
            left.append(result)
    return left


def test_enter_submits_alt_enter_adds_a_line_and_history_recalls(tmp_path):
    sent: list[str] = []
    box = _prompt(tmp_path, sent)
    feed(box, list("one") + ["meta enter"] + list("two") + ["enter"])
    assert sent == ["one\ntwo"] and box.edit_text == ""
    feed(box, list("three") + ["enter"])
    feed(box, ["up"])
    assert box.edit_text == "three"
    feed(box, ["up"])
    assert box.edit_text == "one\ntwo"
    feed(box, ["down", "down"])
    assert box.edit_text == ""
    again = History(tmp_path / "hist")  # kept between runs
    assert again.items == ["one\ntwo", "three"]


def test_at_file_completion(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("")
    (tmp_path / "src" / "mainline.py").write_text("")
    (tmp_path / "setup.cfg").write_text("")
    (tmp_path / ".hidden").write_text("")
    assert complete_path(tmp_path, "s") == ["setup.cfg", "src/"]
    assert complete_path(tmp_path, "../") == []  # never outside the workspace
    hints: list[str] = []
    box = _prompt(tmp_path, [], hints)
    feed(box, list("look at @sr") + ["tab"])
    assert box.edit_text == "look at @src/"
    feed(box, list("m") + ["tab"])
    assert box.edit_text == "look at @src/main" and "src/mainline.py" in hints[-1]
    feed(box, list("l") + ["tab"])
    assert box.edit_text == "look at @src/mainline.py"
    assert feed(_prompt(tmp_path, []), ["tab"]) == ["tab"]  # not an @ word: the app's Tab


def test_a_large_paste_is_one_insert_and_never_submits(tmp_path):
    sent: list[str] = []
    box = _prompt(tmp_path, sent)
    inserts: list[str] = []
    original = box.insert_text
    box.insert_text = lambda text: (inserts.append(text), original(text))  # type: ignore
    paste = PasteFilter(lambda: box)
    text = "\n".join(f"line {n} of a long paste" for n in range(2000))
    keys = [("enter" if c == "\n" else c) for c in text]
    assert paste(keys, []) == []
    assert box.edit_text == text and sent == [] and len(inserts) == 1
    box.set_edit_text("")
    inserts.clear()
    left = paste(["begin paste", "a", "enter", "b"], []) + paste(["c", "end paste", "enter"], [])
    assert box.edit_text == "a\nbc" and left == ["enter"] and len(inserts) == 1
    assert paste(list("typed line"), []) + [] == [] and box.edit_text.endswith("typed line")
    assert paste(list("hi") + ["enter"], []) == ["h", "i", "enter"]  # typing stays typing
    assert paste(list("a long typed prompt") + ["enter"], [])[-1:] == ["enter"]


# -- dialogs ----------------------------------------------------------------------------------
def test_approval_prompt_answers():
    from codetether.agent.permissions import ApprovalRequest

    request = ApprovalRequest("bash", "rm -rf build", {"command": "rm -rf build"}, "c1",
                              "access mode ask")
    for key, expected in (("a", "once"), ("A", "always"), ("d", "reject"), ("esc", "reject")):
        answers: list[str] = []
        prompt = dialogs.ApprovalPrompt(request, answers.append)
        screen = text_of(prompt, (100,))
        assert "allow bash  rm -rf build" in screen and "[Shift+A] always" in screen
        assert feed(prompt, ["x", key], (100,)) == [] and answers == [expected]
    assert feed(dialogs.ApprovalPrompt(request, lambda a: None), ["ctrl c"], (100,)) == \
        ["ctrl c"]


def test_picker_searches_and_chooses():
    chosen: list = []
    closed: list = []
    items = [dialogs.Item("fix the login bug", "ses_1", "2 msgs"),
             dialogs.Item("add dark mode", "ses_2"), dialogs.Item("fix flaky test", "ses_3")]
    picker = dialogs.Picker("sessions", items, chosen.append, lambda: closed.append(1))
    assert "add dark mode" in text_of(picker, (50, 12))
    feed(picker, list("fix"), (50, 12))
    screen = text_of(picker, (50, 12))
    assert "add dark mode" not in screen and "fix flaky test" in screen
    feed(picker, ["down", "enter"], (50, 12))
    assert chosen == ["ses_3"]
    feed(picker, ["esc"], (50, 12))
    assert closed == [1]
    custom: list = []
    models = dialogs.Picker("model", [dialogs.Item("openai/gpt-4o", "openai/gpt-4o")],
                            custom.append, lambda: None, allow_custom=True)
    feed(models, list("local/qwen") + ["enter"], (50, 12))
    assert custom == ["local/qwen"]


# -- themes and status ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(themes.BUILTIN))
def test_every_builtin_theme_is_a_valid_palette_in_16_and_256_colours(name):
    palette = themes.load(name).palette()
    assert {entry[0] for entry in palette} == set(themes.ROLES)
    for _role, fg16, bg16, mono, fg256, bg256 in palette:
        urwid.AttrSpec(fg16, bg16, 16)
        urwid.AttrSpec(fg256, bg256, 256)
        urwid.AttrSpec(mono, "default", 1)


def test_user_theme_loads_and_reloads_when_its_file_changes(tmp_path):
    folder = themes.user_theme_dir()
    folder.mkdir(parents=True)
    path = folder / "mine.toml"
    path.write_text('base = "light"\n[colors]\naccent = "#ff8800"\nbogus = "#000"\n')
    theme = themes.load("mine")
    assert theme.colors["accent"] == "#ff8800" and theme.colors["background"] == "#ffffff"
    assert "mine" in themes.available() and any("bogus" in n for n in theme.notes)
    watcher = themes.ThemeWatcher(theme)
    assert watcher.changed() is None
    path.write_text('[colors]\naccent = "#00ff00"\n')
    os.utime(path, (theme.mtime + 5, theme.mtime + 5))
    reloaded = watcher.changed()
    assert reloaded is not None and reloaded.colors["accent"] == "#00ff00"
    path.write_text("[colors\n")  # half-written: keep the old colours
    os.utime(path, (theme.mtime + 9, theme.mtime + 9))
    assert watcher.changed() is None and watcher.theme.colors["accent"] == "#00ff00"
    with pytest.raises(themes.ThemeError, match="unknown theme"):
        themes.load("nope")


def test_colour_depth_follows_the_terminal():
    assert themes.color_depth({"TERM": "xterm-256color"}) == 256
    assert themes.color_depth({"TERM": "xterm"}) == 16
    assert themes.color_depth({"TERM": "xterm", "COLORTERM": "truecolor"}) == 256
    assert themes.color_depth({"TERM": "xterm-256color", "NO_COLOR": "1"}) == 1
    assert themes.nearest16("#00d7ff") == "light cyan"
    assert themes.nearest16("#0b0f14", background=True) == "black"


def test_status_bar_fits_80_columns_and_reads_the_git_branch(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "feature/x"], cwd=tmp_path, check=True)
    (tmp_path / "sub").mkdir()
    assert git_branch(tmp_path / "sub") == "feature/x"
    bar = StatusBar()
    bar.update(StatusInfo(model="anthropic/claude-sonnet-4-20250514", agent="plan",
                          title="a very long session title that cannot fit at all",
                          input_tokens=12345, output_tokens=678, cost=0.0421, context_pct=37,
                          cwd=str(tmp_path), branch="feature/x", busy="working"))
    line = text_of(bar, (80,))
    assert len(line.splitlines()) == 1 and len(line) <= 80
    assert "working" in line and "ctx 37%" in line and "↑12k ↓678" in line
    assert "⎇ feature/x" in line and "$0.0421" in line


def test_side_panel_lists_sessions_todos_and_files():
    panel = SidePanel()
    panel.update([("ses_1", "fix login")], [{"content": "write tests", "status": "in_progress"}],
                 ["src/app.py"], current="ses_1")
    screen = text_of(panel, (32, 16))
    assert "• fix login" in screen and "[>] write tests" in screen and "src/app.py" in screen


# -- the app, without a terminal --------------------------------------------------------------
@pytest.fixture
def llm(monkeypatch):
    with ScriptedLLMServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-TUIW-0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("CODETETHER_DEFAULT_MODEL", "openai/gpt-4o")
        yield server


def make_app(tmp_path: Path, **options):
    from codetether.agent.setup import open_session
    from codetether.tui.app import App, Options

    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    session, store, cfg = open_session(workspace)
    app = App(Options(workspace=workspace, **options), store, cfg, session)
    app.start()
    return app


def pump(app, until, timeout: float = 15.0) -> None:
    """Run posted UI callbacks until ``until()`` holds (bounded; waits on the post Event)."""
    deadline = time.monotonic() + timeout
    while True:
        app.posted.clear()
        app.drain()
        if until():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; conversation:\n{app.conversation.text()}")
        app.posted.wait(remaining)


def idle(app) -> bool:
    return app.worker is None or not app.worker.is_alive()


def test_a_turn_with_an_approval_runs_in_the_worker_thread(tmp_path, llm):
    llm.enqueue(Turn(thinking="I should write it.", text="Writing.",
                     tool_calls=[ToolCall("write", {"path": "a.txt", "content": "x"})]),
                Turn(text="Done writing."))
    app = make_app(tmp_path)
    pump(app, lambda: app.agent is not None and idle(app))
    app.submit("write a.txt")
    pump(app, lambda: isinstance(app.slot.original_widget, dialogs.ApprovalPrompt))
    tool = app.conversation.tool("call_0_write")
    assert tool is not None and tool.status == "approval"
    app.slot.original_widget.keypress((80,), "A")
    pump(app, lambda: idle(app) and "Done writing." in app.conversation.text())
    assert (app.opts.workspace / "a.txt").read_text() == "x"
    assert app.slot.original_widget is app.input and tool.status == "ok"
    remembered = json.loads((Path(os.environ["CODETETHER_DATA_DIR"]) /
                             "approvals.json").read_text())
    assert "write" in remembered[str(app.opts.workspace.resolve())]
    assert "I should write it." in app.conversation.text()
    screen = text_of(app.top, (80, 24))
    lines = screen.splitlines()
    assert len(lines) == 24 and "openai/gpt-4o" in lines[-1] and "↑22 ↓14" in lines[-1]
    assert app.session.title == "write a.txt"


def test_cancelling_while_an_approval_waits_denies_it(tmp_path, llm):
    llm.enqueue(Turn(tool_calls=[ToolCall("bash", {"command": "touch nope"})]))
    app = make_app(tmp_path)
    pump(app, lambda: app.agent is not None and idle(app))
    app.submit("do it")
    pump(app, lambda: isinstance(app.slot.original_widget, dialogs.ApprovalPrompt))
    app.interrupt()  # Ctrl+C
    pump(app, lambda: idle(app) and app.slot.original_widget is app.input)
    assert "turn cancelled" in app.conversation.text()
    assert not (app.opts.workspace / "nope").exists()
    assert app.quit_armed  # a second Ctrl+C would quit
    llm.enqueue(Turn(text="fresh turn"))
    app.submit("again")
    pump(app, lambda: idle(app) and "fresh turn" in app.conversation.text())


def test_slash_commands(tmp_path, llm):
    from codetether.tui import commands

    app = make_app(tmp_path)
    pump(app, lambda: app.agent is not None and idle(app))
    commands.dispatch(app, "/frobnicate")
    assert "unknown command /frobnicate" in app.conversation.text()
    commands.dispatch(app, "/agent plan")
    pump(app, lambda: idle(app) and app.agent.rt.profile.name == "plan")
    assert app.agent_name == "plan" and app.session.agent == "plan"
    app.cycle_agent()  # Tab
    pump(app, lambda: idle(app) and app.agent.rt.profile.name == "explore")
    commands.dispatch(app, "/agent wizard")
    assert "/agent takes one of" in app.conversation.text()
    commands.dispatch(app, "/theme solarized-light")
    assert app.theme.name == "solarized-light"
    commands.dispatch(app, "/theme nope")
    assert "unknown theme 'nope'" in app.conversation.text()
    (app.opts.workspace / "notes.md").write_text("remember this")
    commands.dispatch(app, "/file notes.md")
    assert [a.name for a in app.attachments] == ["notes.md"]
    commands.dispatch(app, "/file missing.md")
    assert "cannot attach" in app.conversation.text()
    commands.dispatch(app, "/export out.json")
    exported = json.loads((app.opts.workspace / "out.json").read_text())
    assert exported["id"] == app.session.id
    commands.dispatch(app, "/help")
    assert app.overlay is not None and "Alt+Enter" in text_of(app.top, (100, 30))
    app.unhandled_input("esc")
    assert app.overlay is None
    commands.dispatch(app, "/resume ses_nope")
    assert "no session" in app.conversation.text()
    commands.dispatch(app, "/model openai/gpt-4o-mini")
    pump(app, lambda: idle(app) and app.model_ref == "openai/gpt-4o-mini")
    llm.enqueue(Turn(text="read it"))
    app.submit("use the attached file")
    pump(app, lambda: idle(app) and "read it" in app.conversation.text())
    sent = llm.requests[-1].body
    assert sent["model"] == "gpt-4o-mini"
    assert "remember this" in json.dumps(sent["messages"][-1])


def test_side_panel_toggles_and_tracks_changed_files(tmp_path, llm):
    llm.enqueue(Turn(tool_calls=[ToolCall("write", {"path": "new.py", "content": "x = 1\n"})]),
                Turn(text="ok"))
    app = make_app(tmp_path, access_mode="full")
    pump(app, lambda: app.agent is not None and idle(app))
    app.submit("make new.py")
    pump(app, lambda: idle(app) and "ok" in app.conversation.text())
    app.toggle_panel()
    screen = text_of(app.top, (100, 30))
    assert "Changed files" in screen and "new.py" in screen and "make new.py" in screen
    app.toggle_panel()
    assert "Changed files" not in text_of(app.top, (100, 30))


def test_no_provider_is_one_line_not_a_crash(tmp_path):
    app = make_app(tmp_path)
    pump(app, lambda: idle(app) and "no provider configured" in app.conversation.text())
    assert app.agent is None
    app.submit("hello")
    assert "no model is ready" in app.conversation.text()


def test_the_tui_needs_a_terminal(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "codetether.tui", str(tmp_path)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env,
                          timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: the TUI needs a terminal (stdin and stdout are not both TTYs): use codetether "
        'run "prompt" for scripts and pipes']


def test_the_question_tool_is_answered_from_the_prompt(tmp_path, llm):
    llm.enqueue(Turn(tool_calls=[ToolCall("question", {"question": "Which colour?",
                                                       "options": ["red", "blue"]})]),
                Turn(text="Blue it is."))
    app = make_app(tmp_path)
    pump(app, lambda: app.agent is not None and idle(app))
    app.submit("paint it")
    pump(app, lambda: app.question is not None)
    assert "Which colour?" in app.conversation.text() and "2. blue" in app.conversation.text()
    app.submit("2")
    pump(app, lambda: idle(app) and "Blue it is." in app.conversation.text())
    tool_message = [m for m in llm.requests[1].body["messages"] if m["role"] == "tool"][-1]
    assert "blue" in tool_message["content"]


def test_undo_and_compact_commands(tmp_path, llm):
    from codetether.tui import commands

    llm.enqueue(Turn(tool_calls=[ToolCall("write", {"path": "gone.txt", "content": "x"})]),
                Turn(text="wrote gone.txt"))
    app = make_app(tmp_path, access_mode="full")
    pump(app, lambda: app.agent is not None and idle(app))
    app.submit("make gone.txt")
    pump(app, lambda: idle(app) and "wrote gone.txt" in app.conversation.text())
    assert (app.opts.workspace / "gone.txt").exists()
    commands.dispatch(app, "/undo")
    pump(app, lambda: idle(app) and "restored the workspace" in app.conversation.text())
    assert not (app.opts.workspace / "gone.txt").exists()
    assert "wrote gone.txt" not in app.conversation.text()  # reverted messages leave the view
    commands.dispatch(app, "/undo")
    pump(app, lambda: idle(app) and "nothing to undo" in app.conversation.text())
    commands.dispatch(app, "/compact")
    pump(app, lambda: idle(app) and "nothing to compact yet" in app.conversation.text())
