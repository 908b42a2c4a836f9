"""Shared fixtures. Test data is generated, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY_MODEL_TEXT = " ".join(
    ["Mia found seven red apples near the quiet river and Harry ran home."] * 40
)


@pytest.fixture(scope="session")
def tiny_model_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text file to train tiny models' tokenizers on."""
    path = tmp_path_factory.mktemp("tiny-text") / "text.txt"
    path.write_text(TINY_MODEL_TEXT)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, tiny_model_text: Path) -> dict[str, Path]:
    """One tiny model folder per family (32 wide, vocabulary 300), built once per session and
    only read by the tests (``bert``, ``gpt2``, ``llama``)."""
    from brainmis.models.tiny import make_tiny_model

    return {
        family: make_tiny_model(
            family, tiny_model_text, tmp_path_factory.mktemp(f"tiny-{family}"), hidden=32, vocab=300
        )
        for family in ("bert", "gpt2", "llama")
    }
