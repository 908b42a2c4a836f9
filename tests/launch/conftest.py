"""Fixtures of the launch tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def fake_bundle(tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format": "test", "dataset": "x"}))
    return folder
