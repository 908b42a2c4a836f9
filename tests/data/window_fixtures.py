"""Tiny tokenizers and a tiny in-memory dataset for the alignment / datamodule tests.

Two tokenizer kinds, both trained here with ``tokenizers`` and saved as Hugging Face folders:
- BERT-like: word-level vocabulary, whitespace + punctuation pre-tokenizer, adds [CLS] ... [SEP],
  has a pad token, so every word maps to known tokens and group ids are hand-checkable;
- GPT-2-like: byte-level BPE with no post-processor (offsets include the leading space), adds no
  special tokens, has ``<|endoftext|>`` as BOS/EOS and no pad token.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from brainmis.data.records import BrainDataset, Run, Subject

VOCABULARY_TEXT = (
    "the owl flew over the quiet town at night . "
    "a small boy watched the owl from his window , and smiled . "
    "rain fell on the roofs ; the river rose slowly . "
    "she said hello to the baker who sold bread every morning !"
)
WORDS = VOCABULARY_TEXT.split()


def bert_like_tokenizer(folder: Path) -> Path:
    """Save a word-level BERT-like tokenizer to ``folder`` and return it."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: index for index, token in enumerate(specials)}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    tokenizer.save_pretrained(folder)
    return folder


def gpt2_like_tokenizer(folder: Path) -> Path:
    """Save a byte-level BPE GPT-2-like tokenizer (no special tokens added, no pad)."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([VOCABULARY_TEXT] * 3, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    tokenizer.save_pretrained(folder)
    return folder


def tiny_run(
    name: str,
    n_trs: int,
    n_voxels: int,
    rng: np.random.Generator,
    trim_start: int = 1,
    trim_end: int = 1,
    tr: float = 2.0,
    words_per_tr: int = 3,
) -> Run:
    """A run of ``n_trs`` TRs stamped at 2, 4, ... s, words in every third TR left empty."""
    tr_times = tr * np.arange(1, n_trs + 1, dtype=np.float64)
    words, onsets = [], []
    for t in range(n_trs):
        if t % 3 == 2:  # a silent TR
            continue
        for k in range(words_per_tr):
            words.append(WORDS[(t * words_per_tr + k) % len(WORDS)])
            onsets.append(tr_times[t] - tr + (k + 1) * tr / (words_per_tr + 1))
    kept = np.arange(trim_start, n_trs - trim_end, dtype=np.int64)
    responses = rng.standard_normal((len(kept), n_voxels)).astype(np.float32)
    return Run(
        name=name,
        tr_times=tr_times,
        responses=responses,
        kept_trs=kept,
        words=np.asarray(words),
        word_onsets=np.asarray(onsets, dtype=np.float64),
    )


def tiny_dataset(
    n_runs: int = 3, n_trs: int = 24, n_voxels: int = 12, subjects: tuple[str, ...] = ("A", "B")
) -> BrainDataset:
    """Subjects with ``n_runs`` runs each; voxel 0 has zero variance, the ROI ``lang`` covers
    voxels 0..n_voxels-3 and ``other`` the last two; the ceiling of voxel 1 is below 0.05."""
    rng = np.random.default_rng(0)
    out = {}
    for name in subjects:
        runs = [tiny_run(f"run{k + 1}", n_trs, n_voxels, rng) for k in range(n_runs)]
        for run in runs:
            run.responses[:, 0] = 3.0
        lang = np.zeros(n_voxels, dtype=bool)
        lang[: n_voxels - 2] = True
        ceiling = np.full(n_voxels, 0.5)
        ceiling[1] = 0.01
        out[name] = Subject(
            name=name, runs=runs, roi_masks={"lang": lang, "other": ~lang}, noise_ceiling=ceiling
        )
    return BrainDataset(name="tiny", tr=2.0, subjects=out)
