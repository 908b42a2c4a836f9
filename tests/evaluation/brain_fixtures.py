"""Tiny model + synthetic bundle shared by the brain-evaluation tests (built in temp folders)."""

from __future__ import annotations

from pathlib import Path

from brainmis.data.synthetic import synthetic_bundle
from brainmis.models.tiny import make_tiny_model

SYNTHETIC_SIZES = {"n_voxels": 60, "max_words": 900}


def build_tiny_gpt2(folder: Path) -> Path:
    """An untrained 2-layer, 32-wide GPT-2 with a tokenizer trained on the narrative."""
    return make_tiny_model("gpt2", out=folder, hidden=32, layers=2, heads=2, vocab=300)


def build_bundle(cache: Path) -> Path:
    """A one-subject synthetic HP bundle (4 runs, 60 voxels) with the true ceiling as its
    precomputed ceiling file (one subject has no inter-subject ceiling)."""
    return synthetic_bundle(
        cache, layout="hp", n_subjects=1, seed=0, hp_noise_ceiling="true", **SYNTHETIC_SIZES
    )


def datamodule_arguments(bundle: Path, model: Path) -> dict:
    return {
        "bundle": str(bundle),
        "tokenizer_path": str(model),
        "fold": 1,
        "batch_size": 16,
        "context_trs": 3,
    }
