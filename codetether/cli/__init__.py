"""Command-line front end: the parser table lives in ``main``; each command in its own module,
imported only when that command runs."""
