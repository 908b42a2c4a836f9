"""Write a synthetic matrix of finished run folders, as training + evaluation would leave them.

Each run folder (``<root>/<model>/<dataset>/<condition>/sub-<S>_fold-<F>/version_0``, with
``_seed-<seed>`` after the fold when the spec has several training seeds) holds a
``run_manifest.json``, real TensorBoard event files, ``evaluation/lm.json``,
``evaluation/brain_alignment.json``, ``evaluation/brain_r_epoch{E}.npy`` and
``evaluation/probing.csv`` with two epochs (only the last should be used). Values are seeded
random numbers around planted condition effects, so the expected direction of every contrast
is known: brain alignment tuned > preserving > misaligned, LM loss nearly equal, probing
tuned > preserving > misaligned by ``PROBING_EFFECT`` per task.

For tests of the statistics a spec can plant a per-subject effect (``brain_effect``, added
to the brain mean of a (condition, subject)), set the run-to-run (fold) noise, and leave out
the parts a test does not need (event files, per-voxel arrays, probing) to stay fast.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BRAIN_MEAN = {"pretrained": 0.22, "preserving": 0.24, "misaligned": 0.12, "tuned": 0.30}
LM_LOSS = {"pretrained": 3.20, "preserving": 3.05, "misaligned": 3.08, "tuned": 3.04}
PROBING_EFFECT = {"pretrained": -0.01, "preserving": 0.0, "misaligned": -0.03, "tuned": 0.02}
SUBFIELDS = ("morphology", "syntax", "semantics", "reasoning", "discourse")


@dataclass
class StudySpec:
    """What to write. ``tasks_per_subfield`` classification tasks per subfield, plus one
    regression task (metric ``pearson``) in semantics."""

    models: tuple[str, ...] = ("gpt2",)
    datasets: tuple[str, ...] = ("hp",)
    conditions: tuple[str, ...] = ("pretrained", "preserving", "misaligned", "tuned")
    subjects: tuple[str, ...] = ("F", "H", "I", "J", "K", "L")
    folds: tuple[int, ...] = (0, 1)
    seed: int = 42
    tasks_per_subfield: int = 4
    probe_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    n_voxels: int = 300
    n_steps: int = 12
    epochs: int = 2
    random_seed: int = 0
    written: list[Path] = field(default_factory=list)
    # Training seeds; empty means ``(seed,)``.
    seeds: tuple[int, ...] = ()
    # Condition -> brain mean before subject offsets and effects.
    brain_means: dict[str, float] = field(default_factory=lambda: dict(BRAIN_MEAN))
    # (condition, subject) -> added to that subject's brain mean in that condition.
    brain_effect: dict[tuple[str, str], float] = field(default_factory=dict)
    # Standard deviations: between runs (folds, seeds) and between voxels of a run.
    fold_noise: float = 0.01
    voxel_noise: float = 0.1
    write_events: bool = True
    write_per_voxel: bool = True
    write_probing: bool = True
    # Also write the newer brain_alignment.json keys: nc_ratio_of_means, nc_median and
    # voxel_selection (counts depend on the subject only).
    newer_brain_keys: bool = False

    @property
    def training_seeds(self) -> tuple[int, ...]:
        return self.seeds or (self.seed,)


def run_folder(
    root: Path,
    model: str,
    dataset: str,
    condition: str,
    subject: str,
    fold: int,
    seed: int | None = None,
) -> Path:
    name = f"sub-{subject}_fold-{fold}" + ("" if seed is None else f"_seed-{seed}")
    return root / model / dataset / condition / name / "version_0"


def voxel_selection_record(subject_index: int) -> dict:
    """The ``voxel_selection`` a newer evaluation writes, made up per subject."""
    total = 1000 + 10 * subject_index
    non_finite, constant = subject_index % 2, 3
    in_roi = 400 + subject_index
    above = 300 + subject_index
    return {
        "ceiling_source": "inter_subject",
        "threshold": 0.05,
        "counts": {
            "total": total,
            "non_finite_dropped": non_finite,
            "zero_variance_dropped": constant,
            "in_roi": in_roi,
            "above_ceiling": above,
            "selected": min(in_roi, above) - 50,
        },
    }


def task_names(spec: StudySpec) -> list[tuple[str, str, str]]:
    """``(task, subfield, metric)`` for every task of the synthetic suite."""
    tasks = [
        (f"{subfield}-task{index}", subfield, "accuracy")
        for subfield in SUBFIELDS
        for index in range(spec.tasks_per_subfield)
    ]
    return [*tasks, ("semantics-regression", "semantics", "pearson")]


def write_event_file(folder: Path, condition: str, n_steps: int, rng: np.random.Generator) -> None:
    """Real TensorBoard scalars of the training contract, shaped like a training run."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(folder))
    sign = {"misaligned": -1.0, "tuned": 1.0}.get(condition, 0.3)
    for step in range(n_steps):
        progress = step / max(1, n_steps - 1)
        writer.add_scalar("train/lm_loss", 3.6 - 0.5 * progress + rng.normal(0, 0.03), step)
        brain_r = 0.2 + 0.1 * sign * progress + rng.normal(0, 0.01)
        writer.add_scalar("train/brain_r", brain_r, step)
        writer.add_scalar("train/brain_loss", -brain_r, step)
        if step % 4 == 3:
            writer.add_scalar("val/lm_loss", 3.5 - 0.4 * progress + rng.normal(0, 0.02), step)
            writer.add_scalar("val/brain_r", brain_r - 0.05, step)
            writer.add_scalar(
                "brain_alignment/mean",
                BRAIN_MEAN.get(condition, 0.2) * (0.8 + 0.2 * progress),
                step,
            )
    writer.close()


def write_run(
    folder: Path,
    identity: dict,
    spec: StudySpec,
    rng: np.random.Generator,
    subject_offset: float,
    task_base: dict[str, float],
    status: str = "complete",
) -> None:
    condition, subject = identity["condition"], identity["subject"]
    evaluation = folder / "evaluation"
    evaluation.mkdir(parents=True)
    manifest = {"identity": identity, "status": status, "seed": identity["seed"]}
    (folder / "run_manifest.json").write_text(json.dumps(manifest, indent=1))
    if spec.write_events:
        write_event_file(folder, condition, spec.n_steps, rng)
    last_epoch = spec.epochs - 1
    lm_loss = LM_LOSS.get(condition, 3.1) + rng.normal(0, spec.fold_noise)
    (evaluation / "lm.json").write_text(json.dumps({"epoch": last_epoch, "lm_loss": lm_loss}))
    brain_mean = (
        spec.brain_means.get(condition, 0.2)
        + spec.brain_effect.get((condition, subject), 0.0)
        + subject_offset
        + rng.normal(0, spec.fold_noise)
    )
    for epoch in range(spec.epochs):
        mean = brain_mean * (epoch + 1) / spec.epochs
        r = np.clip(rng.normal(mean, spec.voxel_noise, spec.n_voxels), -1, 1).astype(np.float32)
        if spec.write_per_voxel:
            np.save(evaluation / f"brain_r_epoch{epoch}.npy", r)
    r = r.astype(np.float64)
    brain = {
        "epoch": last_epoch,
        "mean": float(r.mean()),
        "median": float(np.median(r)),
        "nc_normalized": float(r.mean() / 0.6),
        "n_voxels": spec.n_voxels,
        "per_roi": {"IFG": {"mean": float(r[:100].mean())}},
        "leakage_mlp": {"mean": 0.0},
    }
    if spec.newer_brain_keys:
        brain["nc_ratio_of_means"] = float(r.mean() / 0.5)
        brain["nc_median"] = float(np.median(r) / 0.55)
        brain["voxel_selection"] = voxel_selection_record(spec.subjects.index(subject))
    (evaluation / "brain_alignment.json").write_text(json.dumps(brain, indent=1))
    if not spec.write_probing:
        return
    with (evaluation / "probing.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "epoch", "task", "subfield", "seed", "metric", "score"])
        for epoch in range(spec.epochs):
            for task, subfield, metric in task_names(spec):
                effect = PROBING_EFFECT.get(condition, 0.0) if epoch == last_epoch else -0.2
                for seed in spec.probe_seeds:
                    score = task_base[task] + effect + subject_offset / 4 + rng.normal(0, 0.008)
                    writer.writerow(
                        [folder.name, epoch, task, subfield, seed, metric, f"{score:.6f}"]
                    )
                    if metric == "accuracy":
                        writer.writerow(
                            [
                                folder.name,
                                epoch,
                                task,
                                subfield,
                                seed,
                                "macro_f1",
                                f"{score - 0.02:.6f}",
                            ]
                        )


def write_synthetic_study(root: Path, spec: StudySpec | None = None) -> StudySpec:
    """Write every run of ``spec`` below ``root``; returns the spec with ``written`` filled."""
    spec = spec or StudySpec()
    rng = np.random.default_rng(spec.random_seed)
    task_base = {task: float(rng.uniform(0.55, 0.85)) for task, _, _ in task_names(spec)}
    subject_offsets = {subject: float(rng.normal(0, 0.03)) for subject in spec.subjects}
    for model in spec.models:
        for dataset in spec.datasets:
            for condition in spec.conditions:
                for subject in spec.subjects:
                    for fold in spec.folds:
                        for seed in spec.training_seeds:
                            identity = {
                                "model": model,
                                "dataset": dataset,
                                "subject": subject,
                                "fold": fold,
                                "condition": condition,
                                "seed": seed,
                            }
                            folder = run_folder(
                                root,
                                model,
                                dataset,
                                condition,
                                subject,
                                fold,
                                seed if len(spec.training_seeds) > 1 else None,
                            )
                            write_run(
                                folder, identity, spec, rng, subject_offsets[subject], task_base
                            )
                            spec.written.append(folder)
    return spec
