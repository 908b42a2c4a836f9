"""BrainDataModule: voxel selection, batches per the contract, splits, target shuffling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from window_fixtures import bert_like_tokenizer, gpt2_like_tokenizer, tiny_dataset

from brainmis.data.datamodule import BrainDataModule
from brainmis.errors import BrainmisInputError

BATCH_KEYS = {"input_ids", "attention_mask", "group_ids", "targets", "sample_ids"}


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    return str(bert_like_tokenizer(tmp_path_factory.mktemp("bert")))


@pytest.fixture(scope="module")
def gpt2_path(tmp_path_factory):
    return str(gpt2_like_tokenizer(tmp_path_factory.mktemp("gpt2")))


def make(tokenizer_path, dataset=None, **kwargs):
    kwargs.setdefault("batch_size", 4)
    return BrainDataModule.from_dataset(
        dataset or tiny_dataset(), tokenizer_path=tokenizer_path, **kwargs
    )


def all_batches(loader):
    return list(loader)


def test_n_voxels_and_selection_are_known_right_after_init(bert_path):
    dm = make(bert_path)
    # 12 voxels: voxel 0 has zero variance, voxel 1 a ceiling under 0.05 -> 10 remain
    assert dm.n_voxels == 10
    assert dm.selected_voxels.tolist() == list(range(2, 12))
    assert dm.voxel_counts["selected"] == 10
    assert dm.subject.name == "A" and dm.test_run == 0 and dm.context_trs == 5
    assert dm.ceiling_source == "subject noise ceiling" and dm.ceiling_threshold == 0.05
    assert set(dm.roi_masks) == {"lang", "other"}
    assert dm.roi_masks["other"].tolist() == [False] * 8 + [True] * 2
    np.testing.assert_allclose(dm.noise_ceiling, 0.5)
    only_lang = make(bert_path, rois=["lang"], subject="B")
    assert only_lang.n_voxels == 8 and set(only_lang.roi_masks) == {"lang"}
    assert only_lang.subject.name == "B"


def test_window_table_and_true_targets(bert_path):
    dm = make(bert_path, fold=1)
    dm.setup("fit")
    n_windows = 3 * (24 - 2)  # 3 runs of 24 TRs, first and last TR trimmed
    assert dm.window_runs.shape == (n_windows,)
    assert dm.true_targets.shape == (n_windows, 10) and dm.true_targets.dtype == np.float32
    for run in range(3):  # z-scored per run
        rows = dm.true_targets[dm.window_runs == run]
        np.testing.assert_allclose(rows.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(rows.std(0), 1, atol=1e-4)
    assert dm.test_run == 1 and set(dm.window_runs[dm.split.test]) == {1}
    assert dm.tokenizer is not None


def test_batches_follow_the_contract_and_group_ids_match_the_words(bert_path):
    dm = make(bert_path)
    dm.setup("fit")
    tokenizer = dm.tokenizer
    seen = []
    for batch in all_batches(dm.val_dataloader()) + all_batches(dm.train_dataloader()):
        assert set(batch) == BATCH_KEYS
        b, length = batch["input_ids"].shape
        assert batch["attention_mask"].shape == batch["group_ids"].shape == (b, length)
        for key in ("input_ids", "attention_mask", "group_ids", "sample_ids"):
            assert batch[key].dtype == torch.long
        assert batch["targets"].dtype == torch.float32 and batch["targets"].shape == (b, 10)
        assert torch.equal(
            batch["targets"], torch.from_numpy(dm.true_targets[batch["sample_ids"].numpy()])
        )
        assert torch.all(batch["group_ids"][batch["attention_mask"] == 0] == -1)
        for row, sample in enumerate(batch["sample_ids"].tolist()):
            groups = dm.window_table.groups[sample]
            ids, gids = batch["input_ids"][row], batch["group_ids"][row]
            for g, words in enumerate(groups):
                tokens = tokenizer.convert_ids_to_tokens(ids[gids == g].tolist())
                assert tokens == tokenizer.tokenize(" ".join(words))
            seen.append(sample)
    # train batches drop their incomplete last batch; train + val cover the rest
    n_train, n_val = len(dm.split.train), len(dm.split.val)
    assert len(seen) == n_val + (n_train // 4) * 4
    assert set(seen) <= set(dm.split.train.tolist()) | set(dm.split.val.tolist())


def test_full_dataloader_yields_every_window_in_order_with_true_targets(gpt2_path):
    dm = make(gpt2_path, shuffle_targets=True, batch_size=5)
    batches = all_batches(dm.full_dataloader())
    samples = torch.cat([b["sample_ids"] for b in batches])
    assert samples.tolist() == list(range(len(dm.window_table)))
    targets = torch.cat([b["targets"] for b in batches])
    assert torch.equal(targets, torch.from_numpy(dm.true_targets))
    # GPT-2-like: BOS first in every window, no pad token -> EOS pads
    first = batches[0]
    assert torch.all(first["input_ids"][:, 0] == dm.tokenizer.bos_token_id)
    padded = first["attention_mask"] == 0
    assert torch.all(first["input_ids"][padded] == dm.tokenizer.eos_token_id)


def test_single_items_match_the_batched_fetch(bert_path):
    dm = make(bert_path, shuffle_targets=True)
    loader = dm.train_dataloader()
    dataset = loader.dataset
    positions = [5, 0, 17, 3]
    batched = loader.collate_fn(dataset.__getitems__(positions))
    one_by_one = loader.collate_fn([dataset[p] for p in positions])
    for key, value in batched.items():
        assert torch.equal(value, one_by_one[key]), key


def test_a_worker_process_gives_the_same_batches(bert_path):
    in_process = all_batches(make(bert_path).val_dataloader())
    with_worker = all_batches(make(bert_path, num_workers=1).val_dataloader())
    assert len(in_process) == len(with_worker)
    for a, b in zip(in_process, with_worker, strict=True):
        for key in BATCH_KEYS:
            assert torch.equal(a[key], b[key]), key


def test_test_loader_is_the_held_out_run(bert_path):
    dm = make(bert_path, fold=2, shuffle_targets=True)
    batches = all_batches(dm.test_dataloader())
    samples = torch.cat([b["sample_ids"] for b in batches]).numpy()
    assert samples.tolist() == dm.split.test.tolist()
    assert set(dm.window_runs[samples]) == {2}
    targets = torch.cat([b["targets"] for b in batches]).numpy()
    np.testing.assert_array_equal(targets, dm.true_targets[samples])


@pytest.mark.parametrize("mode", ["permutation", "circular_shift"])
def test_shuffling_is_a_seeded_permutation_within_train_and_val(bert_path, mode):
    dm = make(bert_path, shuffle_targets=True, shuffle_mode=mode, shuffle_seed=1)
    dm.setup("fit")
    source = dm.target_source
    for members in (dm.split.train, dm.split.val):
        assert sorted(source[members].tolist()) == members.tolist()
        assert not np.array_equal(source[members], members)
    assert source[dm.split.test].tolist() == dm.split.test.tolist()
    np.testing.assert_array_equal(dm.targets, dm.true_targets[source])
    again = make(bert_path, shuffle_targets=True, shuffle_mode=mode, shuffle_seed=1)
    again.setup("fit")
    np.testing.assert_array_equal(again.target_source, source)
    other = make(bert_path, shuffle_targets=True, shuffle_mode=mode, shuffle_seed=2)
    other.setup("fit")
    assert not np.array_equal(other.target_source, source)


def test_preserving_changes_only_the_targets(bert_path):
    plain = make(bert_path)
    shuffled = make(bert_path, shuffle_targets=True)

    def loaders(dm):
        torch.manual_seed(0)  # same batch order for both
        return all_batches(dm.train_dataloader()) + all_batches(dm.val_dataloader())

    changed = 0
    for a, b in zip(loaders(plain), loaders(shuffled), strict=True):
        for key in ("input_ids", "attention_mask", "group_ids", "sample_ids"):
            assert torch.equal(a[key], b[key])
        changed += int(not torch.equal(a["targets"], b["targets"]))
        expected = shuffled.true_targets[shuffled.target_source[b["sample_ids"].numpy()]]
        np.testing.assert_array_equal(b["targets"].numpy(), expected)
    assert changed > 0
    np.testing.assert_array_equal(plain.true_targets, shuffled.true_targets)


def test_ceiling_from_repeats_or_none(bert_path):
    dataset = tiny_dataset(subjects=("A",))
    subject = dataset.subjects["A"]
    subject.noise_ceiling = None
    rng = np.random.default_rng(1)
    last = subject.runs[-1]
    signal = rng.standard_normal(last.responses.shape).astype(np.float32)
    last.repeats = np.stack([signal + 0.1 * rng.standard_normal(signal.shape) for _ in range(2)])
    last.repeats = last.repeats.astype(np.float32)
    last.repeats[:, :, 0] = 3.0  # voxel 0 keeps zero variance
    last.responses = last.repeats.mean(0)
    dm = make(bert_path, dataset=dataset)
    assert dm.ceiling_source == "repeats of run run3 (single-scan ceiling)"
    assert dm.noise_ceiling is not None and dm.noise_ceiling.shape == (dm.n_voxels,)
    assert dm.n_voxels == 11  # voxel 0: zero variance and no repeatable signal
    held_out = make(bert_path, dataset=dataset, fold=2)  # the repeated run is the test run
    assert "2-repeat mean ceiling for the test run" in held_out.ceiling_source
    assert np.all(held_out.noise_ceiling > dm.noise_ceiling)  # a mean of 2 is less noisy
    last.repeats = None
    with pytest.raises(BrainmisInputError, match="no noise ceiling is available") as refused:
        make(bert_path, dataset=dataset)  # ROI only must be asked for
    assert "subject A" in str(refused.value) and "allow_roi_only: true" in str(refused.value)
    dm = make(bert_path, dataset=dataset, allow_roi_only=True)
    assert dm.ceiling_source == "none (ROI mask only)" and dm.noise_ceiling is None
    assert dm.ceiling_threshold is None
    assert dm.n_voxels == 11  # only the zero-variance voxel is dropped


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject": "Z"}, "unknown subject 'Z'; subjects are A, B"),
        ({"fold": 3}, "fold 3 out of range"),
        ({"shuffle_mode": "reverse"}, "shuffle_mode must be one of"),
        ({"context_trs": 0}, "context_trs must be >= 1"),
        ({"val_run": "nope"}, "val_run 'nope' is not a run"),
        ({"rois": []}, "rois is an empty list"),
        ({"rois": ["lang", "motor"]}, "unknown ROI 'motor'"),
        ({"ceiling_threshold": 0.9}, "no voxel left"),
    ],
)
def test_bad_arguments_are_one_line_input_errors(bert_path, kwargs, message):
    with pytest.raises(BrainmisInputError, match=message) as error:
        make(bert_path, **kwargs)
    assert "\n" not in str(error.value)


def test_tokenizer_problems(tmp_path, bert_path):
    with pytest.raises(BrainmisInputError, match="nothing is downloaded at run time"):
        make(str(tmp_path / "missing"))
    with pytest.raises(BrainmisInputError, match="max_length 2 leaves no room"):
        make(bert_path, max_length=2)  # [CLS] + [SEP] fill it, refused before setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BrainmisInputError, match="cannot load a tokenizer|not a fast"):
        make(str(tmp_path / "empty"))
    dm = make(None)
    assert dm.n_voxels == 10  # no tokenizer needed to know the voxels
    with pytest.raises(BrainmisInputError, match="no tokenizer"):
        dm.setup("fit")


def test_missing_bundle_folder(tmp_path):
    with pytest.raises(BrainmisInputError, match="bundle folder not found"):
        BrainDataModule(bundle=str(tmp_path / "nothing"))


def test_bundle_on_disk_gives_the_same_windows_as_in_memory(tmp_path, bert_path):
    from brainmis.data.bundle import write_bundle

    bundle = write_bundle(tiny_dataset(), tmp_path / "bundle")
    on_disk = BrainDataModule(bundle=str(bundle), tokenizer_path=bert_path, subject="B", fold=2)
    in_memory = make(bert_path, subject="B", fold=2)
    assert on_disk.bundle_path == bundle and in_memory.bundle_path is None
    on_disk.setup("fit")
    in_memory.setup("fit")
    np.testing.assert_array_equal(on_disk.selected_voxels, in_memory.selected_voxels)
    np.testing.assert_array_equal(on_disk.true_targets, in_memory.true_targets)
    assert on_disk.window_table.groups == in_memory.window_table.groups
    for a, b in zip(on_disk.tokens, in_memory.tokens, strict=True):
        np.testing.assert_array_equal(a.input_ids, b.input_ids)


def test_synthetic_default_is_generated_once_into_the_cache(tmp_path, gpt2_path):
    cache = tmp_path / "cache"
    dm = BrainDataModule(cache_dir=str(cache), tokenizer_path=gpt2_path, batch_size=8)
    assert dm.bundle_path.is_relative_to(cache) and (dm.bundle_path / "manifest.json").is_file()
    assert dm.n_voxels == dm.voxel_counts["selected"] > 0
    assert dm.noise_ceiling.shape == (dm.n_voxels,)
    again = BrainDataModule(cache_dir=str(cache), tokenizer_path=gpt2_path, subject=dm.subject.name)
    assert again.bundle_path == dm.bundle_path
    np.testing.assert_array_equal(again.selected_voxels, dm.selected_voxels)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == 8 and batch["targets"].shape == (8, dm.n_voxels)
    assert int(batch["group_ids"].max()) == dm.context_trs - 1
