"""Tiny models and data shared by the model tests (built once per session, in temp folders)."""

from __future__ import annotations

from pathlib import Path

import pytest
from standin import tiny_text

from brainmis.models.tiny import make_tiny_model


@pytest.fixture(scope="session")
def tiny_text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(tiny_text())
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, tiny_text_file: Path):
    """``family -> folder`` of an untrained tiny model, built on first request."""
    folders: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in folders:
            out = tmp_path_factory.mktemp(f"tiny-{family}")
            folders[family] = make_tiny_model(
                family, tiny_text_file, out, hidden=32, layers=2, heads=2, vocab=300
            )
        return folders[family]

    return get
