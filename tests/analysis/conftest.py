"""Synthetic studies (matrices of finished run folders) shared by the analysis tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from synthetic_study import StudySpec, write_synthetic_study


@pytest.fixture(scope="session")
def full_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StudySpec]:
    """A complete matrix: gpt2 x hp x 4 conditions x 6 subjects x 1 fold (24 runs)."""
    root = tmp_path_factory.mktemp("full_study")
    spec = write_synthetic_study(root, StudySpec(folds=(0,), n_steps=8))
    return root, spec


@pytest.fixture(scope="session")
def _small_study_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StudySpec]:
    root = tmp_path_factory.mktemp("small_study_template")
    spec = StudySpec(
        models=("gpt2", "bert"),
        conditions=("preserving", "misaligned", "tuned"),
        subjects=("F", "H"),
        folds=(0, 1),
        tasks_per_subfield=2,
        n_voxels=50,
        n_steps=4,
        random_seed=1,
    )
    return root, write_synthetic_study(root, spec)


@pytest.fixture
def small_study(_small_study_template: tuple[Path, StudySpec], tmp_path: Path) -> Path:
    """A fresh copy (tests may damage it) of 2 models x hp x 3 conditions x 2 subjects x 2 folds."""
    template, _ = _small_study_template
    root = tmp_path / "study"
    shutil.copytree(template, root)
    return root
