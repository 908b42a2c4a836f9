"""File names of one source: the layout's defaults (from ``layouts``) or the manifest's overrides.

A name is a template relative to the source root with placeholders such as ``{subject}``,
``{story}`` or ``{run}``; a source manifest may replace any of them under ``files:``, e.g.
``files: {data: "bold/sub_{subject}.npy"}``. Absolute overrides are used as they are.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from brainmis.errors import BrainmisInputError


@dataclass(frozen=True)
class FileNames:
    """Templates of one source's files.

    Attributes:
        root: the source folder the templates are relative to.
        templates: file key -> template, e.g. ``"data" -> "data_subject_{subject}.npy"``.
        placeholders: file key -> the placeholders its template may use.
    """

    root: Path
    templates: Mapping[str, str]
    placeholders: Mapping[str, tuple[str, ...]]

    @classmethod
    def with_overrides(
        cls,
        root: Path,
        defaults: Mapping[str, tuple[str, tuple[str, ...]]],
        overrides: Mapping[str, str] | None,
        source: Path | str | None,
    ) -> FileNames:
        """Templates from ``defaults`` (key -> (template, placeholders)) and ``overrides``.

        Raises ``BrainmisInputError`` naming ``source`` for an unknown key or placeholder.
        """
        templates = {key: template for key, (template, _) in defaults.items()}
        placeholders = {key: fields for key, (_, fields) in defaults.items()}
        for key, template in (overrides or {}).items():
            if key not in defaults:
                raise BrainmisInputError(
                    source, f"unknown file key {key!r} under 'files' (known: {sorted(defaults)})"
                )
            if not isinstance(template, str) or not template:
                raise BrainmisInputError(source, f"files.{key} must be a non-empty path string")
            used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
            unknown = used - set(placeholders[key])
            if unknown:
                raise BrainmisInputError(
                    source,
                    f"files.{key} uses unknown placeholder(s) {sorted(unknown)} "
                    f"(allowed: {list(placeholders[key])})",
                )
            templates[key] = template
        return cls(Path(root), templates, placeholders)

    def path(self, key: str, **fields: object) -> Path:
        """The file ``key`` for the given placeholder values."""
        return self.root / self.templates[key].format(**fields)

    def discover(self, key: str, field: str, **fixed: object) -> list[str]:
        """Values of placeholder ``field`` for which file ``key`` exists, sorted.

        Other placeholders take the values in ``fixed``. Used to list subjects or stories.
        """
        pattern = self.templates[key]
        if field not in {name for _, name, _, _ in string.Formatter().parse(pattern) if name}:
            return []
        regex = ""
        glob = ""
        for literal, name, _, _ in string.Formatter().parse(pattern):
            regex += re.escape(literal)
            glob += literal
            if name is None:
                continue
            if name == field:
                seen = f"(?P<{field}>" in regex
                regex += f"(?P={field})" if seen else f"(?P<{field}>[^/]+?)"
                glob += "*"
            else:
                regex += re.escape(str(fixed[name]))
                glob += str(fixed[name])
        base = self.root if not Path(glob).is_absolute() else Path("/")
        relative_glob = glob if not Path(glob).is_absolute() else glob.lstrip("/")
        found = set()
        for candidate in base.glob(relative_glob):
            relative = candidate.relative_to(base).as_posix()
            if Path(glob).is_absolute():
                relative = "/" + relative
            match = re.fullmatch(regex, relative)
            if match and candidate.is_file():
                found.add(match.group(field))
        return sorted(found, key=natural_key)

    def discover_all(self, key: str) -> list[dict[str, str]]:
        """Every combination of placeholder values for which file ``key`` exists, e.g.
        ``[{"subject": "001", "story": "pieman"}, ...]``, in natural order."""
        pattern = self.templates[key]
        regex, glob, seen = "", "", set()
        for literal, name, _, _ in string.Formatter().parse(pattern):
            regex += re.escape(literal)
            glob += literal
            if name is None:
                continue
            regex += f"(?P={name})" if name in seen else f"(?P<{name}>[^/]+?)"
            glob += "*"
            seen.add(name)
        absolute = Path(glob).is_absolute()
        base = Path("/") if absolute else self.root
        found = []
        for candidate in base.glob(glob.lstrip("/") if absolute else glob):
            relative = ("/" if absolute else "") + candidate.relative_to(base).as_posix()
            match = re.fullmatch(regex, relative)
            if match and candidate.is_file():
                found.append(match.groupdict())
        return sorted(found, key=lambda values: tuple(natural_key(v) for v in values.values()))


def natural_key(text: str) -> tuple:
    """Sort key that orders ``run2`` before ``run10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def template_of(path: Path) -> str:
    """A layout path built with placeholder strings, as a template relative to the root."""
    return Path(path).as_posix()
