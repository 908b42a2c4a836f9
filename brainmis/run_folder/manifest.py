"""``run_manifest.json``: what ran in a run folder and how it ended; its reader and writer.

Contract (docs/architecture.md, "Run folder"): ``identity`` ``{model, dataset, subject,
fold, condition, seed}`` (``brainmis.run_folder.identity``) and ``status`` (``running | complete |
failed``), plus the resolved config, the data bundle checksum, package versions, the git
commit, SLURM ids, timings and one entry per attempt under ``attempts``.

``read_manifest`` is the one reader (``brainmis fit`` and ``brainmis sweep`` read a run's
status with it, ``brainmis compare`` its identity): the file must be a JSON object with an
``identity`` object and a known ``status``. Whether the identity is complete is checked where
a whole identity is needed (``RunManifest.run_identity``). ``write_manifest`` replaces the
file atomically. ``brainmis.launch.manifest.RunManifestCallback`` fills it during a fit.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from brainmis.errors import BrainmisInputError
from brainmis.run_folder.identity import RunIdentity
from brainmis.run_folder.layout import MANIFEST_FILE
from brainmis.structured_files import read_mapping

MANIFEST_FORMAT = 1
STATUSES = ("running", "complete", "failed")


@dataclass
class RunManifest:
    """The content of ``run_manifest.json``. Times are UTC ISO 8601; durations in seconds.

    ``identity`` holds the ``IDENTITY_FIELDS`` (a value may be None while unknown).
    """

    identity: dict[str, Any]
    status: str = "running"
    run_id: str | None = None
    seed: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    slurm: dict[str, Any] | None = None
    created: str | None = None
    updated: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    format: int = MANIFEST_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, ``format`` first."""
        values = asdict(self)
        return {"format": values.pop("format"), **values}

    def run_identity(self, source: str | Path | None = None) -> RunIdentity:
        """The whole identity (``BrainmisInputError`` naming ``source`` if a field lacks)."""
        return RunIdentity.from_mapping(self.identity, source)

    @classmethod
    def from_dict(cls, values: dict[str, Any], path: Path | str | None = None) -> RunManifest:
        """Check and build a manifest; unknown keys are ignored (newer formats)."""
        if not isinstance(values, dict):
            raise BrainmisInputError(path, "a run manifest must be a JSON object")
        missing = [key for key in ("identity", "status") if key not in values]
        if missing:
            raise BrainmisInputError(path, f"run manifest lacks {', '.join(missing)}")
        if not isinstance(values["identity"], dict):
            raise BrainmisInputError(path, "run manifest 'identity' must be an object")
        if values["status"] not in STATUSES:
            raise BrainmisInputError(
                path, f"run manifest status {values['status']!r} is not one of {STATUSES}"
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in values.items() if key in known})


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def manifest_path(run_dir: Path | str) -> Path:
    """``<run_dir>/run_manifest.json`` (``run_dir`` may already be the file)."""
    path = Path(run_dir)
    return path / MANIFEST_FILE if path.is_dir() or path.name != MANIFEST_FILE else path


def read_manifest(run_dir: Path | str) -> RunManifest | None:
    """The manifest of ``run_dir`` (a folder or the JSON file), ``None`` if it has none."""
    path = manifest_path(run_dir)
    if not path.is_file():
        return None
    return RunManifest.from_dict(read_mapping(path, "run manifest"), path)


def run_status(run_dir: Path | str) -> str | None:
    """``running``, ``complete``, ``failed``, or ``None`` when the folder has no manifest."""
    manifest = read_manifest(run_dir)
    return None if manifest is None else manifest.status


def write_manifest(manifest: RunManifest, run_dir: Path | str) -> Path:
    """Write atomically (temporary file + rename): a reader never sees half a manifest."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest.updated = now_iso()
    path = folder / MANIFEST_FILE
    temporary = folder / f".{MANIFEST_FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(manifest.to_dict(), indent=2, default=json_fallback) + "\n")
    os.replace(temporary, path)
    return path


def json_fallback(value: Any) -> Any:
    """JSON for values ``json`` does not know: paths as strings, numpy scalars as numbers,
    sets and tuples as lists, anything else as its ``repr``."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, (set, tuple)):
        return list(value)
    return repr(value)
