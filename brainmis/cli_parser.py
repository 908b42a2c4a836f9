"""The argparse parser of every ``brainmis`` tool: a usage error is one line, not a usage dump.

``ToolArgumentParser(prog="brainmis <tool>", ...)`` behaves like ``argparse.ArgumentParser``
except that a usage error (a missing or unknown argument, a bad choice or type) raises
``BrainmisInputError``, which ``brainmis.cli.main`` prints as one line
``brainmis <tool>: error: <problem> (see brainmis <tool> --help)`` before exiting with 2.
``--help`` still prints the full usage.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from brainmis.errors import BrainmisInputError


def usage_problem(message: str, prog: str) -> str:
    """The one-line problem of a usage error, pointing at the tool's ``--help``."""
    return f"{message} (see {prog} --help)"


class ToolArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors raise one ``BrainmisInputError`` line."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise BrainmisInputError(None, usage_problem(message, self.prog))
