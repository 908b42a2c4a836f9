"""Fixtures for the probing tests: a small built-in suite and tiny models whose tokenizers
are trained on its text (made here, nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainmis.evaluation.probing.builtin.suite import BUILTIN_TASKS, generate_rows
from brainmis.models.backbone import load_backbone
from brainmis.models.tiny import make_tiny_model


def suite_text(path: Path) -> Path:
    """Every sentence of a few items of every built-in task, one per line."""
    import ast

    lines = []
    for spec in BUILTIN_TASKS:
        for row in generate_rows(spec, seed=123, sizes=(60, 0, 0)):
            context = ast.literal_eval(row["context"]) if row["context"] else []
            inputs = [x for x in ast.literal_eval(row["inputs"]) if isinstance(x, str)]
            lines += context + inputs
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def probing_text(tmp_path_factory) -> Path:
    return suite_text(tmp_path_factory.mktemp("probing-text") / "suite.txt")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, probing_text) -> Path:
    out = tmp_path_factory.mktemp("tiny-gpt2") / "model"
    return make_tiny_model("gpt2", probing_text, out, hidden=32, layers=2, heads=2, vocab=400)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, probing_text) -> Path:
    out = tmp_path_factory.mktemp("tiny-bert") / "model"
    return make_tiny_model("bert", probing_text, out, hidden=32, layers=2, heads=2, vocab=400)


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_gpt2_dir):
    loaded = load_backbone(tiny_gpt2_dir)
    return loaded.model, loaded.tokenizer


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir):
    loaded = load_backbone(tiny_bert_dir)
    return loaded.model, loaded.tokenizer
