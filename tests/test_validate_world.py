"""``brainmis validate-world`` end to end, reduced: the probed world's directions.

The full check (8 subjects, four conditions, the whole built-in suite) is what
docs/validation.md reports; this slow test runs 6 subjects, two conditions and the
word-category tasks plus two others, and checks that the planted effect points the right way
in the files the command wrote.
"""

from __future__ import annotations

import json

import pytest

from brainmis.cli import main as cli_main

TASKS = [
    "word-category-number",
    "word-category-people",
    "word-category-place",
    "word-category-sensory",
    "word-category-motion",
    "negation",
]


@pytest.mark.slow
def test_probed_world_directions(tmp_path, capsys):
    out = tmp_path / "validate"
    code = cli_main(["validate-world", "--world", "probed", "--subjects", "6", "--out", str(out),
                     "--conditions", "misaligned", "preserving", "--tasks", *TASKS])  # fmt: skip
    printed = capsys.readouterr().out
    assert code in (0, 1)
    assert "fit 12/12" in printed and "left: about" in printed
    assert "verdict for world probed" in printed
    verdict = json.loads((out / "verdict.json").read_text())
    by_name = {check["name"].split(":")[0]: check for check in verdict["expectations"]}
    assert by_name["brain r"]["value"] > 0  # preserving - misaligned
    assert by_name["targeted tasks"]["value"] > 0
    assert verdict["targeted_tasks"] == TASKS[:3]
    assert (out / "comparison" / "task_group_contrasts.csv").is_file()
    assert (out / "pretrained_probing" / "probing.csv").is_file()
