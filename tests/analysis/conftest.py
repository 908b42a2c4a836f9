"""Studies (matrices of finished run folders) shared by the analysis tests: written by
``synthetic_study`` (planted effects, fast) or really fitted (``fitted_study``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from synthetic_study import StudySpec, write_synthetic_study

REPO = Path(__file__).resolve().parents[2]
FITTED_CONDITIONS = ("misaligned", "preserving")
FITTED_SUBJECTS = ("F", "H")  # the synthetic default's two subjects


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


@pytest.fixture(scope="session")
def fitted_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run folders of real fits, as ``brainmis fit`` leaves them: a tiny GPT-2 (32 wide,
    untrained) on the synthetic default, 2 conditions x 2 subjects x fold 0, one short epoch
    (2 training batches) each with the demo config's callbacks (brain alignment before and
    after, probing narrowed to one task of 30 items). Returns the folder above the 4 runs.

    One torch thread: these matrices are too small to gain from two, and a second thread
    only waits for a busy core (twice the time on 2 shared cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit_study(tmp_path_factory.mktemp("fitted_study"))
    finally:
        torch.set_num_threads(threads)


def _fit_study(root: Path) -> Path:
    from brainmis.cli import main
    from brainmis.models.tiny import make_tiny_model

    model = make_tiny_model("gpt2", out=root / "tiny-gpt2", hidden=32, vocab=300)
    for subject in FITTED_SUBJECTS:
        for condition in FITTED_CONDITIONS:
            code = main(
                [
                    "fit",
                    "--config",
                    str(REPO / "configs" / "demo" / f"{condition}.yaml"),
                    f"--model.pretrained_path={model}",
                    f"--data.cache_dir={root / 'cache'}",
                    f"--data.subject={subject}",
                    "--trainer.max_epochs=1",
                    "--trainer.limit_train_batches=2",
                    "--trainer.limit_val_batches=1",
                    "--trainer.num_sanity_val_steps=0",
                    "--trainer.enable_model_summary=false",
                    "--probing.tasks=[negation]",
                    "--probing.max_items=30",
                    f"--trainer.default_root_dir={root / 'runs' / f'{condition}_sub-{subject}'}",
                ]
            )
            assert code == 0, (condition, subject)
    return root / "runs"
