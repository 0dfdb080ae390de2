"""`python -m codetether` runs the same CLI as the `codetether` script."""

from codetether.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
