"""``compare --task-groups``: probing tasks tested by named group, and a group against the rest."""

from __future__ import annotations

import csv
import dataclasses
import json
import re

import numpy as np
import pytest

from brainmis.analysis.task_groups import read_task_groups
from brainmis.cli import main as cli_main
from brainmis.errors import BrainmisInputError


def read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_compare_tests_each_group_and_the_group_against_the_rest(full_study, tmp_path, capsys):
    root, _ = full_study
    groups = tmp_path / "groups.tsv"
    groups.write_text("task\tgroup\nsyntax-task0\ttargeted\nsyntax-task1\ttargeted\n")
    out = tmp_path / "cmp"
    code = cli_main(["compare", str(root), "--out", str(out), "--task-groups", str(groups),
                     "--alternative", "greater"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "task groups (--task-groups)" in printed
    assert "Contrast tests of brain r and probing: greater; LM loss" in printed
    # absolute scores and the win-rate interval over tasks beside every probing contrast
    assert re.search(r"scores \d\.\d{3} vs \d\.\d{3}; wins \d+% vs \d+% \(a - b, 95% CI over tasks \[", printed)
    rows = read_csv(out / "task_group_contrasts.csv")
    pair = [r for r in rows if (r["condition_a"], r["condition_b"]) == ("preserving", "misaligned")]
    by_scope = {r["scope"]: r for r in pair}
    assert set(by_scope) == {"targeted", "other", "targeted vs rest"}
    # The group's difference, recomputed from the per-task tests: per subject the mean over
    # the group's tasks of a - b, then the mean over subjects.
    tests = [
        r for r in read_csv(out / "probing_task_tests.csv")
        if (r["condition_a"], r["condition_b"]) == ("preserving", "misaligned")
    ]  # fmt: skip

    def group_change(in_group):
        per_subject = {}
        for r in tests:
            if in_group(r["task"]):
                per_subject.setdefault(r["subject"], []).append(
                    float(r["mean_a"]) - float(r["mean_b"])
                )
        return np.mean([np.mean(v) for v in per_subject.values()])

    targeted = group_change(lambda task: task in ("syntax-task0", "syntax-task1"))
    rest = group_change(lambda task: task not in ("syntax-task0", "syntax-task1"))
    assert float(by_scope["targeted"]["difference"]) == pytest.approx(targeted, abs=1e-9)
    assert float(by_scope["other"]["difference"]) == pytest.approx(rest, abs=1e-9)
    assert float(by_scope["targeted vs rest"]["difference"]) == pytest.approx(
        targeted - rest, abs=1e-9
    )
    # The planted probing effect is the same for every task: the groups change, their
    # difference does not.
    assert float(by_scope["targeted"]["p"]) < 0.05
    assert float(by_scope["targeted vs rest"]["p"]) > 0.05
    assert by_scope["targeted"]["p_holm"] != ""
    # the groups' win-rate intervals over tasks (the group of two tasks has one)
    assert float(by_scope["targeted"]["win_difference_ci_low"]) <= float(
        by_scope["targeted"]["win_difference_ci_high"]
    )
    assert by_scope["targeted vs rest"]["win_difference_ci_low"] == ""
    # the figure of the split, in the report
    figure = out / "figures" / "task_groups_gpt2-hp.png"
    assert figure.is_file() and figure.stat().st_size > 10_000
    assert "figures/task_groups_gpt2-hp.png" in (out / "report.md").read_text()


def test_truth_file_groups(tmp_path):
    path = tmp_path / "truth.json"
    path.write_text(json.dumps({"world": "probed", "probing_task_groups": {
        "tasks": {"word-category-people": "targeted"}, "default": "untargeted"}}))  # fmt: skip
    groups = read_task_groups(path)
    assert groups.group_of("word-category-people") == "targeted"
    assert groups.group_of("negation") == "untargeted"
    assert groups.named_groups == ["targeted"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name\tgroup\na\tb\n", "header 'task<TAB>group'"),
        ("task\tgroup\na\n", "line 2: expected 'task<TAB>group'"),
        ("task\tgroup\na\tx\na\ty\n", "line 3: task 'a' is in two groups"),
        ('{"tasks": 3}', "no task groups"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_task_group_files_are_one_line(tmp_path, text, problem):
    path = tmp_path / "groups.tsv"
    path.write_text(text)
    with pytest.raises(
        BrainmisInputError, match="task-group|" + problem.replace("(", r"\(")
    ) as error:
        read_task_groups(path)
    assert problem in str(error.value) and str(path) in str(error.value)


def test_world_verdict_measures_each_expectation(full_study, tmp_path):
    """On the synthetic study every task loses 0.03 under misalignment: the targeted drop is
    found, and the untargeted tasks' equal drop fails the 'within one point' check."""
    from brainmis.analysis.comparison import ComparisonOptions
    from brainmis.analysis.world_verdict import judge
    from brainmis.commands.compare import compare_runs

    root, _ = full_study
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"probing_task_groups": {
        "tasks": {"syntax-task0": "targeted", "syntax-task1": "targeted"},
        "default": "untargeted"}}))  # fmt: skip
    options = ComparisonOptions(alternative="greater", task_groups=read_task_groups(truth))
    result = compare_runs([root], tmp_path / "cmp", options=options)
    verdicts = [
        (check.name.split(" (")[0], check.passed) for check in judge(result.comparison, "probed")
    ]
    assert verdicts == [
        ("brain r: misaligned < preserving", True),
        ("targeted tasks: misaligned < preserving", True),
        ("untargeted tasks: |misaligned - preserving| <= 0.01", False),
        ("LM loss: misaligned within 5% of preserving", True),
        ("targeted tasks: tuned >= preserving", True),
    ]


def test_unprobed_verdict_checks_groups_and_subfields_separately(full_study, tmp_path):
    """Every task of the synthetic study loses 0.03 under misalignment: the one task group
    (all tasks, "untargeted") differs, Holm p = 2/64 with 6 subjects. The subfields differ
    too, but Holm over 5 subfields cannot reach 0.05 with 6 subjects (5 x 2/64): the subfield
    check passes, and fails once a subfield's Holm p is below 0.05."""
    from brainmis.analysis.comparison import ComparisonOptions
    from brainmis.analysis.world_verdict import judge
    from brainmis.commands.compare import compare_runs

    root, _ = full_study
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"probing_task_groups": {"tasks": {}, "default": "untargeted"}}))
    options = ComparisonOptions(task_groups=read_task_groups(truth))
    result = compare_runs([root], tmp_path / "cmp", options=options)
    checks = judge(result.comparison, "unprobed")
    assert [check.name.split(" (")[0] for check in checks] == [
        "brain r: misaligned < preserving",
        "no task group differs",
        "no subfield differs",
        "LM loss: misaligned within 5% of preserving",
    ]
    assert [check.passed for check in checks] == [True, False, True, True]
    assert "untargeted" in checks[1].effect and "1 groups tested" in checks[1].effect
    assert "5 subfields tested" in checks[2].effect
    morphology = next(
        row
        for row in result.comparison.contrasts
        if row.scope == "morphology" and row.condition_a == "preserving" and row.model != "all"
    )
    result.comparison.contrasts.append(dataclasses.replace(morphology, p_holm=0.01))
    failed = judge(result.comparison, "unprobed")[2]
    assert not failed.passed and failed.effect.startswith("smallest Holm p: morphology")
