"""Writing the long-format probing results file, ``<run>/evaluation/probing.csv``:
``run,epoch,task,subfield,seed,metric,score`` (``brainmis.run_folder.layout.PROBING_COLUMNS``), one
row per probe and metric, appended to after every evaluation (``brainmis compare`` reads it
with ``brainmis.analysis.results.read_probing_scores``)."""

from __future__ import annotations

import csv
from pathlib import Path

from brainmis.evaluation.probing.runner import ProbingScore
from brainmis.run_folder.layout import PROBING_COLUMNS


def append_probing_csv(path: str | Path, run: str, epoch: int, scores: list[ProbingScore]) -> Path:
    """Append ``scores`` to ``path`` (header written when the file is new or empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(PROBING_COLUMNS)
        for row in scores:
            writer.writerow(
                [run, epoch, row.task, row.subfield, row.seed, row.metric, f"{row.score:.6g}"]
            )
    return path


def read_probing_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a probing CSV as dicts (strings), for checks and reports."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
