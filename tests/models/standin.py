"""A small datamodule that yields batches of the contract (docs/architecture.md "Batches")
from generated words, for model tests that must not depend on the data layer's bundles.

Each window holds ``context_trs`` groups of 2-3 words; targets are a fixed random linear map
of word-level random features of the target TR's words plus noise, so a brain head can learn
them.
"""

from __future__ import annotations

import numpy as np
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from brainmis.data.window_tokens import WindowCollator, pad_token_id, tokenize_windows

WORDS = (
    "the cat sat on a mat while Harry ran to the old castle and Mia found seven red apples "
    "near the quiet river because her brother was angry"
).split()


def tiny_text(n_lines: int = 200, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return "\n".join(" ".join(rng.choice(WORDS, 12)) + "." for _ in range(n_lines))


class StandInDataModule(LightningDataModule):
    def __init__(
        self,
        tokenizer,
        n_windows: int = 96,
        n_voxels: int = 6,
        context_trs: int = 3,
        batch_size: int = 8,
        seed: int = 0,
    ):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.tokenizer = tokenizer
        self.n_voxels = n_voxels
        self.context_trs = context_trs
        self.batch_size = batch_size
        word_features = {w: rng.standard_normal(4) for w in WORDS}
        mapping = rng.standard_normal((4, n_voxels))
        self.groups = [
            [list(rng.choice(WORDS, int(rng.integers(2, 4)))) for _ in range(context_trs)]
            for _ in range(n_windows)
        ]
        semantic = np.stack([np.mean([word_features[w] for w in g[-1]], 0) for g in self.groups])
        noise = 0.5 * rng.standard_normal((n_windows, n_voxels))
        self.true_targets = (semantic @ mapping + noise).astype(np.float32)
        self.tokens = tokenize_windows(tokenizer, self.groups, max_length=64)
        order = np.arange(n_windows)
        self.train_ids, self.val_ids, self.test_ids = np.split(
            order, [n_windows * 2 // 3, n_windows * 5 // 6]
        )

    def _loader(self, ids, shuffle=False):
        items = [
            {
                "input_ids": self.tokens[i].input_ids,
                "group_ids": self.tokens[i].group_ids,
                "targets": self.true_targets[i],
                "sample_id": int(i),
            }
            for i in ids
        ]
        return DataLoader(
            items,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle,
            collate_fn=WindowCollator(pad_token_id(self.tokenizer)),
        )

    def train_dataloader(self):
        return self._loader(self.train_ids, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_ids)

    def test_dataloader(self):
        return self._loader(self.test_ids)
