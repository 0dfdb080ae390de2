"""The interactive terminal UI (urwid): chat, tool calls, approvals, models, sessions, themes.

The turn runs in a worker thread; everything the worker (or a tool thread) wants shown is posted
as a callable on a queue and a byte on a ``loop.watch_pipe`` fd wakes the UI thread, which runs
the callables and redraws. The UI thread never waits on the network.

urwid is imported by the modules of this package only, so ``codetether --version`` stays free of
it; submodules are imported explicitly (``urwid.widget``…) where that helps PyInstaller.
"""
