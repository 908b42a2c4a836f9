"""The one error type users see: a problem with their input, named with the file it is in."""

from __future__ import annotations

from pathlib import Path


class BrainmisInputError(ValueError):
    """Bad user input. ``str(error)`` is one line: ``"<file>: <problem>"``.

    The CLI prints that line and exits with status 2, without a traceback. Raise it before
    anything is written, so a failed command leaves no partial output behind.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(self.problem if self.path is None else f"{self.path}: {self.problem}")


def refuse_non_empty_dir(path: str | Path) -> Path:
    """Return ``path`` as a Path; raise if it exists and is a file or a non-empty folder."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BrainmisInputError(
            path, "output folder exists and is not empty; choose a new folder or empty it first"
        )
    return path
