"""The Holmes dataset -> linguistic subfield table, shipped as package data (``subfields.tsv``)."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

SUBFIELDS = ("morphology", "syntax", "semantics", "reasoning", "discourse")
UNKNOWN_SUBFIELD = "unknown"


@cache
def holmes_subfield_table() -> dict[str, str]:
    """Dataset name -> subfield for the 208 Holmes datasets (read once; immutable use only)."""
    text = resources.files(__package__).joinpath("subfields.tsv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {row["dataset"]: row["subfield"] for row in csv.DictReader(lines, delimiter="\t")}


def subfield_of(dataset_name: str) -> str:
    """Subfield of a Holmes dataset by name; ``"unknown"`` for a name not in the table."""
    return holmes_subfield_table().get(dataset_name, UNKNOWN_SUBFIELD)
