"""Named groups of probing tasks, read from a world's truth file or a user's TSV.

``brainmis compare --task-groups FILE`` tests each group of tasks between the conditions of
every contrast ("did the tasks that depend on property X change?") and each named group
against the rest ("did they change *more* than the other tasks?"). ``FILE`` is one of:

- a JSON object with ``"probing_task_groups": {"tasks": {task: group}, "default": group}``
  (the ``ground_truth/truth.json`` that ``brainmis synth`` writes) or that object itself;
- a TSV with the header ``task<TAB>group`` and one task per line.

Tasks a file does not name go into the default group (``untargeted`` in a truth file,
``other`` for a TSV).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from brainmis.errors import BrainmisInputError

TSV_DEFAULT_GROUP = "other"


@dataclass(frozen=True)
class TaskGroups:
    """Task -> group name; ``default`` for every task not listed; ``source``: the file."""

    tasks: dict[str, str]
    default: str
    source: str

    def group_of(self, task: str) -> str:
        return self.tasks.get(task, self.default)

    @property
    def named_groups(self) -> list[str]:
        """The groups the file names, without the default group, sorted."""
        return sorted(set(self.tasks.values()) - {self.default})


def _from_mapping(mapping: object, path: Path) -> TaskGroups:
    if isinstance(mapping, dict) and "probing_task_groups" in mapping:
        mapping = mapping["probing_task_groups"]
    if not isinstance(mapping, dict) or not isinstance(mapping.get("tasks"), dict):
        raise BrainmisInputError(
            path, 'no task groups: expected {"probing_task_groups": {"tasks": {task: group}}}'
        )
    tasks, default = mapping["tasks"], mapping.get("default", TSV_DEFAULT_GROUP)
    bad = [task for task, group in tasks.items() if not isinstance(group, str) or not group]
    if bad:
        raise BrainmisInputError(path, f"task {bad[0]!r}: its group must be a non-empty name")
    if not isinstance(default, str) or not default:
        raise BrainmisInputError(path, "the default group must be a non-empty name")
    return TaskGroups(dict(tasks), default, str(path))


def _from_tsv(text: str, path: Path) -> TaskGroups:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    rows = list(csv.reader(lines, delimiter="\t"))
    if not rows or [cell.strip() for cell in rows[0]] != ["task", "group"]:
        raise BrainmisInputError(path, "a task-group TSV needs the header 'task<TAB>group'")
    tasks: dict[str, str] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise BrainmisInputError(path, f"line {number}: expected 'task<TAB>group'")
        task, group = row[0].strip(), row[1].strip()
        if tasks.get(task, group) != group:
            raise BrainmisInputError(path, f"line {number}: task {task!r} is in two groups")
        tasks[task] = group
    if not tasks:
        raise BrainmisInputError(path, "no task listed")
    return TaskGroups(tasks, TSV_DEFAULT_GROUP, str(path))


def read_task_groups(path: str | Path) -> TaskGroups:
    """The task groups of a truth JSON or a TSV (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise BrainmisInputError(path, "task-group file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BrainmisInputError(path, "task-group file is not UTF-8 text") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as error:
            problem = f"not valid JSON ({error.msg}, line {error.lineno})"
            raise BrainmisInputError(path, problem) from None
        groups = _from_mapping(mapping, path)
    else:
        groups = _from_tsv(text, path)
    return groups
