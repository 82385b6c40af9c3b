"""The ``innx`` command line: one module per command group, thin by design.

Each command parses its arguments, calls one library function and prints the result: what it made
(a path, a table, or ``--json``) on stdout, progress and logs on stderr. Only this package imports
typer and rich. The app itself, with error handling in one place, lives in :mod:`innx.cli.app`.
"""
