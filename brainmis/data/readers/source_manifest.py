"""The source manifest: a small YAML or JSON file saying where a dataset's files are.

Schema (every key but ``layout`` optional; any other key is an error naming it)::

    name: harry_potter          # dataset name (default: the root folder's name)
    layout: hp                  # hp | hp_mat | moth | nifti | narratives | lebel
    root: .                     # folder of the files, relative to this file (default: its folder)
    subjects: [F, H]            # subjects to read (default: every one found); quote "01"
    options:                    # layout-specific, e.g. trim_start, trim_end, tr, tr_offset,
      trim_start: 20            #   allow_pickled_rois, word_tier, roi_name (see each reader's
      trim_end: 15              #   *Options dataclass); unknown options are errors
    files:                      # optional overrides of file-name templates, relative to root,
      data: "bold/{subject}.npy"  # with the layout's placeholders ({subject}, {story}, {run})

A folder holding ``source.yaml`` stands for that file.
"""

from __future__ import annotations

import dataclasses
import string
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainmis.errors import BrainmisInputError
from brainmis.structured_files import read_mapping

SOURCE_MANIFEST_NAME = "source.yaml"
LAYOUTS = ("hp", "hp_mat", "moth", "nifti", "narratives", "lebel")
MANIFEST_KEYS = ("name", "layout", "root", "subjects", "options", "files")


@dataclass(frozen=True)
class SourceManifest:
    """A parsed source manifest.

    Attributes:
        path: the manifest file (None when built from a folder and a layout preset).
        name: dataset name.
        layout: one of ``LAYOUTS``.
        root: absolute folder of the source files.
        subjects: subjects to read, or None for all.
        options: layout options as given (validated by ``build_options``).
        files: file-name template overrides.
    """

    path: Path | None
    name: str
    layout: str
    root: Path
    subjects: list[str] | None
    options: dict[str, Any]
    files: dict[str, str]


def manifest_file(path: str | Path) -> Path:
    """The manifest file for ``path``: itself, or ``<folder>/source.yaml``."""
    path = Path(path)
    if path.is_dir():
        candidate = path / SOURCE_MANIFEST_NAME
        if not candidate.is_file():
            raise BrainmisInputError(
                path, f"folder has no {SOURCE_MANIFEST_NAME}; write one or give a layout preset"
            )
        return candidate
    if not path.is_file():
        raise BrainmisInputError(path, "missing file (source manifest .yaml/.yml/.json)")
    return path


def read_source_manifest(path: str | Path) -> SourceManifest:
    """Read and validate a manifest file (or a folder's ``source.yaml``).

    A file that is not valid JSON (``.json``) or YAML (any other suffix), or that holds
    something other than a mapping, raises ``BrainmisInputError`` naming it
    (``brainmis.structured_files.read_mapping``).
    """
    path = manifest_file(path)
    content = read_mapping(path, "source manifest")
    return parse_source_manifest(content, path.parent, path)


def parse_source_manifest(
    content: Mapping[str, Any], base_dir: Path, path: Path | None
) -> SourceManifest:
    """Validate manifest ``content``; ``root`` is resolved against ``base_dir``."""
    unknown = [key for key in content if key not in MANIFEST_KEYS]
    if unknown:
        raise BrainmisInputError(
            path, f"unknown key {unknown[0]!r} (allowed: {', '.join(MANIFEST_KEYS)})"
        )
    layout = content.get("layout")
    if layout not in LAYOUTS:
        raise BrainmisInputError(
            path, f"unknown or missing layout {layout!r} (one of: {', '.join(LAYOUTS)})"
        )
    root_value = content.get("root", ".")
    if not isinstance(root_value, str) or not root_value:
        raise BrainmisInputError(path, "root must be a folder path string")
    root = (Path(base_dir) / root_value).resolve()
    if not root.is_dir():
        raise BrainmisInputError(path, f"root folder {root} does not exist")
    name = content.get("name", root.name)
    if not isinstance(name, str) or not name:
        raise BrainmisInputError(path, "name must be a non-empty string")
    return SourceManifest(
        path=path,
        name=name,
        layout=layout,
        root=root,
        subjects=parse_subjects(content.get("subjects"), path),
        options=parse_mapping(content.get("options"), "options", path),
        files=parse_mapping(content.get("files"), "files", path),
    )


def files_outside_root(manifest: SourceManifest) -> list[str]:
    """One note per ``files:`` override that points outside the source root (an absolute
    path or one climbing out with ``..``): allowed, but the user should know."""
    notes = []
    for key, template in manifest.files.items():
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        example = (manifest.root / template.format(**dict.fromkeys(fields, "x"))).resolve()
        if not example.is_relative_to(manifest.root):
            notes.append(f"files.{key} ({template}) points outside the source root {manifest.root}")
    return notes


def parse_subjects(value: Any, path: Path | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str | int):
        value = [value]
    if not isinstance(value, list) or not value:
        raise BrainmisInputError(path, "subjects must be a non-empty list of names")
    subjects = []
    for subject in value:
        if isinstance(subject, bool) or not isinstance(subject, str | int):
            raise BrainmisInputError(path, f"subject {subject!r} must be a string")
        subjects.append(str(subject))
    if len(set(subjects)) != len(subjects):
        raise BrainmisInputError(path, f"subjects repeat: {subjects}")
    return subjects


def parse_mapping(value: Any, key: str, path: Path | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BrainmisInputError(path, f"{key} must be a mapping")
    return {str(k): v for k, v in value.items()}


OptionsT = typing.TypeVar("OptionsT")


def build_options(
    options_type: type[OptionsT], options: Mapping[str, Any], source: Path | str | None, layout: str
) -> OptionsT:
    """An options dataclass from a mapping, checking names and value types.

    An unknown option or a value of the wrong type raises ``BrainmisInputError`` naming
    ``source`` and the option.
    """
    hints = typing.get_type_hints(options_type)
    known = [f.name for f in dataclasses.fields(options_type)]  # type: ignore[arg-type]
    values = {}
    for key, value in options.items():
        if key not in known:
            raise BrainmisInputError(
                source, f"unknown option {key!r} for layout {layout} (known: {', '.join(known)})"
            )
        values[key] = coerce_option(value, hints[key], key, source)
    return options_type(**values)


def coerce_option(value: Any, hint: Any, key: str, source: Path | str | None) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool):
        if bool in allowed:
            return value
    elif isinstance(value, int) and int in allowed:
        return value
    elif isinstance(value, int | float) and float in allowed:
        return float(value)
    elif isinstance(value, str) and str in allowed:
        return value
    expected = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise BrainmisInputError(source, f"option {key} must be {expected}, got {value!r}")
