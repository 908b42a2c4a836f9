"""Reading a JSON or YAML file that must hold a mapping, with the project's one-line error.

Every reader of a small structured file (run manifests, configs, bundle manifests, result
records, Holmes configs) goes through ``read_mapping``, so a missing, unreadable or malformed
file is always refused the same way: ``BrainmisInputError(path, problem)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from brainmis.errors import BrainmisInputError

JSON_SUFFIXES = (".json",)


def read_mapping(
    path: str | Path, kind: str | None = None, allow_empty: bool = False
) -> dict[str, Any]:
    """The mapping (``dict``) in a JSON (``.json``) or YAML (any other suffix) file.

    YAML is read with the safe loader (tags that build Python objects are refused).

    Args:
        path: the file.
        kind: what the file is, for the messages (e.g. ``"run manifest"``); default
            ``"JSON"`` or ``"YAML"``.
        allow_empty: an empty YAML file (or one holding only ``null``) reads as ``{}``
            (base configs); by default it is refused like any other non-mapping.

    Raises:
        BrainmisInputError: naming ``path``, when the file is missing, unreadable, not valid
            JSON/YAML, or holds something other than a mapping.
    """
    path = Path(path)
    is_json = path.suffix.lower() in JSON_SUFFIXES
    kind = kind or ("JSON" if is_json else "YAML")
    if not path.is_file():
        raise BrainmisInputError(path, f"{kind} file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BrainmisInputError(path, f"cannot be read as a {kind} file ({error})") from None
    try:
        value = json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())
        language = "JSON" if is_json else "YAML"
        raise BrainmisInputError(path, f"not valid {language} ({reason})") from None
    if value is None and allow_empty and not is_json:
        return {}
    if not isinstance(value, dict):
        raise BrainmisInputError(path, f"a {kind} must be a mapping, got {type(value).__name__}")
    return value
