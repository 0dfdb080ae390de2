"""``python -m codetether.tui [DIR] [-m MODEL] [--agent NAME] [-s ID | -c] [--access-mode M]``:
the TUI without the main command table (tests and benchmarks use it)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from codetether.cli.tui_cmd import add_arguments
    from codetether.core.errors import CodetetherError

    parser = argparse.ArgumentParser(prog="codetether tui")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        from codetether.cli import tui_cmd

        return tui_cmd.run(args)
    except CodetetherError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
