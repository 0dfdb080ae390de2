"""Entry script of the frozen ``codetether`` (PyInstaller runs this file as ``__main__``).

It lives outside the package so PyInstaller puts only ``spec/`` on its search path, not
``codetether/`` itself (which would make ``cli`` importable as a top-level module).
"""

from codetether.cli.main import entry_point

entry_point()
