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
    """Return ``path`` as a Path; raise if it exists and is a file or a non-empty folder, or
    if a file stands where one of its parents would be made."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BrainmisInputError(
            path, "output folder exists and is not empty; choose a new folder or empty it first"
        )
    return refuse_file_in_the_way(path, "output folder")


def missing_model_folder(path: str | Path) -> BrainmisInputError:
    """The error for a model (or tokenizer) folder that does not exist. Nothing is downloaded
    at run time, so a model-hub name (``gpt2``, ``meta-llama/Llama-3.2-1B``) needs a local copy."""
    path = Path(path)
    looks_like_hub_name = not path.is_absolute() and len(path.parts) <= 2
    what = "a model-hub name" if looks_like_hub_name else "a model"
    return BrainmisInputError(
        path,
        f"no local model folder here, and nothing is downloaded at run time. For {what}, make "
        "a local copy on a machine with access: from_pretrained(NAME) then "
        "save_pretrained(FOLDER) for both the model and its tokenizer (or `huggingface-cli "
        "download NAME --local-dir FOLDER`), and set model.pretrained_path to FOLDER",
    )


def refuse_file_in_the_way(folder: str | Path, what: str) -> Path:
    """Return ``folder`` as a Path; raise if it, or the nearest of its parents that exists, is
    not a folder (so the folder could not be made). ``what`` names it, e.g. ``"run folder"``."""
    folder = Path(folder)
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                raise BrainmisInputError(path, f"is a file, so the {what} {folder} cannot be made")
            break
    return folder
