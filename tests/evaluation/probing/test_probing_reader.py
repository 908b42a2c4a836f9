"""Holmes reader on hand-written files of every task type, and its one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from brainmis.errors import BrainmisInputError
from brainmis.evaluation.probing.holmes_reader import Position, read_holmes_folder, read_holmes_task
from brainmis.evaluation.probing.task_types import ProbeTaskType


def write_dataset(folder: Path, task_type: str, num_labels: int, rows: list[tuple]) -> Path:
    """rows: (inputs literal, context literal, label, split)."""
    folder.mkdir(parents=True)
    (folder / "config-none.yaml").write_text(
        f"probe_name: {folder.name}\nprobe_task_type: {task_type}\ncontrol_task_type: NONE\n"
        f"num_labels: {num_labels}\nnum_inputs: 1\n"
    )
    with (folder / "samples.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "inputs", "context", "label", "set-0"])
        for i, (inputs, context, label, split) in enumerate(rows):
            writer.writerow([i, inputs, context, label, split])
    return folder


S = ["train", "dev", "test"]


def test_sentence_task(tmp_path):
    rows = [(repr(["The cat sleeps."]), "", i % 2, S[i % 3]) for i in range(6)]
    task = read_holmes_task(write_dataset(tmp_path / "senteval-bigram_shift", "SENTENCE", 2, rows))
    assert task.task_type is ProbeTaskType.SENTENCE
    assert task.subfield == "syntax"  # from the shipped Holmes table
    assert task.items[0].inputs == ("The cat sleeps.",)
    assert task.labels("train").tolist() == [0, 1]
    assert not task.is_regression


def test_token_and_span_inputs_keep_offsets_even_inside_a_subword(tmp_path):
    text = "The unbelievable dogs ran."
    # "believ" starts and ends inside the word "unbelievable"
    rows = [
        (repr([("believ", 0, 6, 12)]), repr([text]), 1, "train"),
        (repr([("dogs", 0, 17, 21, 3)]), repr([text]), 0, "dev"),
        (repr([("The unbelievable", 0, 0, 16)]), repr([text]), 0, "test"),
    ]
    task = read_holmes_task(write_dataset(tmp_path / "spans", "SENTENCE_SPANS", 2, rows))
    assert task.items[0].inputs == (Position("believ", 0, 6, 12),)
    assert task.items[1].inputs[0].group == 3
    assert task.items[0].context == (text,)
    assert task.subfield == "unknown"


@pytest.mark.parametrize(
    "task_type, inputs, context",
    [
        ("SENTENCE_TOKENS", [("cat", 0, 4, 7), ("sat", 0, 8, 11)], ["The cat sat."]),
        ("SENTENCE_PAIR_BI", ["A cat sat.", "It slept."], None),
        ("SENTENCE_PAIR_CROSS", ["A cat sat.", "It slept."], None),
        (
            "SENTENCE_PAIR_TOKENS_BI",
            [("cat", 0, 2, 5), ("It", 1, 0, 2)],
            ["A cat sat.", "It slept."],
        ),
        (
            "SENTENCE_PAIR_TOKENS_CROSS",
            [("cat", 0, 2, 5), ("It", 1, 0, 2)],
            ["A cat sat.", "It slept."],
        ),
    ],
)
def test_every_pair_and_token_type(tmp_path, task_type, inputs, context):
    rows = [(repr(inputs), repr(context) if context else "", 1, split) for split in S]
    task = read_holmes_task(write_dataset(tmp_path / "t", task_type, 2, rows))
    assert task.task_type.value == task_type
    assert len(task.items[0].inputs) == 2
    if context:
        assert all(isinstance(x, Position) for x in task.items[0].inputs)
        assert task.items[0].context == tuple(context)


def test_regression_labels_are_floats(tmp_path):
    rows = [
        (repr(["one"]), "", value, split) for value, split in zip([0.5, -1.25, 3.0], S, strict=True)
    ]
    task = read_holmes_task(write_dataset(tmp_path / "r", "SENTENCE", 1, rows))
    assert task.is_regression
    assert task.labels("dev").tolist() == [-1.25]


def test_folder_of_datasets_with_name_filter(tmp_path):
    for name in ("a-task", "b-task"):
        write_dataset(
            tmp_path / "holmes" / name, "SENTENCE", 2, [(repr(["x"]), "", 0, s) for s in S]
        )
    assert [t.name for t in read_holmes_folder(tmp_path / "holmes")] == ["a-task", "b-task"]
    assert [t.name for t in read_holmes_folder(tmp_path / "holmes", ["b-task"])] == ["b-task"]
    with pytest.raises(BrainmisInputError, match="no dataset named c-task"):
        read_holmes_folder(tmp_path / "holmes", ["c-task"])


@pytest.mark.parametrize(
    "task_type, num_labels, bad_row, message",
    [
        (
            "SENTENCE",
            2,
            ("['unclosed", "", 0, "train"),
            r"row 3 \(id 1\): inputs is not a valid Python literal",
        ),
        (
            "SENTENCE",
            2,
            ("__import__('os').system('true')", "", 0, "train"),
            "not a valid Python literal",
        ),
        (
            "SENTENCE_SPANS",
            2,
            (repr([("cat", 0, 4, 40)]), repr(["The cat."]), 0, "train"),
            "outside its context",
        ),
        (
            "SENTENCE_TOKENS",
            2,
            (repr([("cat", 1, 0, 3)]), repr(["The cat."]), 0, "train"),
            "points to context 1",
        ),
        ("SENTENCE", 2, (repr(["ok"]), "", 2, "train"), r"label '2' is outside 0..1"),
        ("SENTENCE", 3, (repr(["ok"]), "", -1, "train"), r"label '-1' is outside 0..2"),
        ("SENTENCE", 2, (repr(["ok"]), "", 0, "validation"), "expected train, dev or test"),
        ("SENTENCE_PAIR_CROSS", 2, (repr(["only one"]), "", 0, "train"), "exactly 2 sentences"),
    ],
)
def test_bad_rows_fail_with_one_line_naming_file_and_row(
    tmp_path, task_type, num_labels, bad_row, message
):
    good = (repr(["A b.", "C d."]) if "PAIR" in task_type else repr(["ok"]), "", 0, "dev")
    if task_type in ("SENTENCE_SPANS", "SENTENCE_TOKENS"):
        good = (repr([("The", 0, 0, 3)]), repr(["The cat."]), 0, "dev")
    rows = [good, bad_row, (*good[:3], "test"), (*good[:3], "train")]
    folder = write_dataset(tmp_path / "bad", task_type, num_labels, rows)
    with pytest.raises(BrainmisInputError, match=message) as error:
        read_holmes_task(folder)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(str(folder / "samples.csv"))


def test_missing_split_is_refused(tmp_path):
    rows = [(repr(["x"]), "", 0, "train"), (repr(["y"]), "", 1, "test")]
    folder = write_dataset(tmp_path / "nodev", "SENTENCE", 2, rows)
    with pytest.raises(BrainmisInputError, match="no 'dev' items"):
        read_holmes_task(folder)


def test_bad_config_is_refused(tmp_path):
    folder = write_dataset(tmp_path / "cfg", "SENTENCE", 2, [(repr(["x"]), "", 0, s) for s in S])
    (folder / "config-none.yaml").write_text("probe_task_type: WORDS\nnum_labels: 2\n")
    with pytest.raises(BrainmisInputError, match="unknown probe_task_type 'WORDS'"):
        read_holmes_task(folder)
    (folder / "config-none.yaml").unlink()
    with pytest.raises(BrainmisInputError, match="no config-"):
        read_holmes_task(folder)


def test_capped_keeps_split_proportions_reproducibly(tmp_path):
    rows = [(repr([f"s{i}"]), "", i % 2, S[0] if i < 50 else S[1 + i % 2]) for i in range(80)]
    task = read_holmes_task(write_dataset(tmp_path / "cap", "SENTENCE", 2, rows))
    capped = task.capped(20)
    assert [len(capped.split(s)) for s in S] == [20, 4, 4]
    assert [i.item_id for i in capped.items] == [i.item_id for i in task.capped(20).items]
    assert task.capped(None) is task
