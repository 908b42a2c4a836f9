"""Ground-truth worlds: what drives the simulated brain, and what truth.json says it targets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainmis.cli import main as cli_main
from brainmis.data.synthetic import make_spec, simulate
from brainmis.data.synthetic.word_categories import CATEGORY_LEXICONS, normalize_word


def _membership(brain) -> dict[str, np.ndarray]:
    """Word -> its 0/1 axis values (the jitter removed by rounding)."""
    return {word: np.round(values) for word, values in brain.word_features.items()}


def test_probed_world_is_driven_by_the_categories_its_tasks_test():
    brain = simulate("hp", make_spec(world="probed", n_features=3, max_words=600), 1, seed=0)
    assert brain.categories == ("number", "people", "place")
    for word, values in _membership(brain).items():
        expected = [float(word in CATEGORY_LEXICONS[name]) for name in brain.categories]
        assert values.tolist() == expected, word


def test_unprobed_world_is_a_seeded_partition_unrelated_to_the_categories():
    spec = make_spec(world="unprobed", n_features=3)
    brain = simulate("hp", spec, 1, seed=0)
    membership = np.array(list(_membership(brain).values()))
    assert set(membership.sum(axis=1)) <= {0.0, 1.0}  # each word in at most one group
    assert (membership.sum(axis=0) > 50).all()  # every group has many words
    again = simulate("hp", spec, 1, seed=0)
    pairs = zip(brain.word_features.values(), again.word_features.values(), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)
    other = simulate("hp", spec, 1, seed=1)
    assert not np.array_equal(membership, np.array(list(_membership(other).values())))
    people = np.array(
        [normalize_word(w) in CATEGORY_LEXICONS["people"] for w in brain.word_features]
    )
    for column in membership.T:  # no group is a category in disguise
        assert abs(np.corrcoef(column, people)[0, 1]) < 0.2


def test_synth_cli_writes_the_world_and_its_targeted_tasks(tmp_path, capsys):
    out = tmp_path / "probed"
    assert cli_main(["synth", "--layout", "hp", "--out", str(out), "--world", "probed"]) == 0
    truth = json.loads((out / "ground_truth" / "truth.json").read_text())
    assert truth["world"] == "probed" and truth["spec"]["n_features"] == 3
    assert truth["probing_task_groups"] == {
        "tasks": {f"word-category-{c}": "targeted" for c in ("number", "people", "place")},
        "default": "untargeted",
    }
    assert "probing tasks it targets: word-category-number" in capsys.readouterr().out


def test_unknown_world_is_one_line(tmp_path, capsys):
    code = cli_main(["synth", "--layout", "hp", "--out", str(tmp_path / "x"), "--world", "mars"])
    assert code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'mars'" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--subjects", "1"], "--subjects must be at least 2"),
        (
            ["--conditions", "tuned", "preserving"],
            "--conditions must include misaligned and preserving",
        ),
        (["--tasks", "no-such-task"], "no built-in probing task 'no-such-task'"),
    ],
)
def test_validate_world_bad_options_are_one_line(tmp_path, capsys, extra, problem):
    out = tmp_path / "validate"
    assert cli_main(["validate-world", "--world", "probed", "--out", str(out), *extra]) == 2
    error = capsys.readouterr().err.strip()
    assert problem in error and len(error.splitlines()) == 1
    assert not out.exists()
