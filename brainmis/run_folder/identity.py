"""Who a run is: ``RunIdentity(model, dataset, subject, fold, condition, seed)``.

The one definition used by the sweep (planned runs), the run manifest (what ran) and the
comparison (which cell of the study a run fills).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from brainmis.errors import BrainmisInputError

# The identity's field names, in the order of ``RunIdentity`` (and of its sorting).
IDENTITY_FIELDS = ("model", "dataset", "subject", "fold", "condition", "seed")


@dataclass(frozen=True, order=True)
class RunIdentity:
    """Who a run is. ``setting`` = (model, dataset); ``unit`` = (subject, fold, seed), the
    unit of replication within a condition."""

    model: str
    dataset: str
    subject: str
    fold: int
    condition: str
    seed: int

    @property
    def setting(self) -> tuple[str, str]:
        return (self.model, self.dataset)

    @property
    def unit(self) -> tuple[str, int, int]:
        return (self.subject, self.fold, self.seed)

    @property
    def run_id(self) -> str:
        """A folder-safe name, e.g. ``gpt2-hp-tuned-subF-fold0-seed42``."""
        return (
            f"{self.model}-{self.dataset}-{self.condition}-sub{self.subject}"
            f"-fold{self.fold}-seed{self.seed}"
        )

    def label(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.as_dict().items())

    def as_dict(self) -> dict[str, Any]:
        """``{model, dataset, subject, fold, condition, seed}`` (the manifest's ``identity``)."""
        return dict(zip(IDENTITY_FIELDS, astuple(self), strict=True))

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str | Path | None) -> RunIdentity:
        """The identity in ``values`` (e.g. a manifest's ``identity``); every field must be
        given and ``fold``/``seed`` must be integers, else a ``BrainmisInputError`` naming
        ``source``."""
        missing = [name for name in IDENTITY_FIELDS if values.get(name) in (None, "")]
        if missing:
            raise BrainmisInputError(source, f"run identity lacks {', '.join(missing)}")
        try:
            fold, seed = int(values["fold"]), int(values["seed"])
        except (TypeError, ValueError):
            raise BrainmisInputError(
                source,
                f"fold and seed must be integers, got {values['fold']!r}, {values['seed']!r}",
            ) from None
        return cls(
            model=str(values["model"]),
            dataset=str(values["dataset"]),
            subject=str(values["subject"]),
            fold=fold,
            condition=str(values["condition"]),
            seed=seed,
        )
