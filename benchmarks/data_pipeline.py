"""Data pipeline benchmark: bundle load time and data-loader throughput against a model.

Prints two comparisons, each as ours beside the goal:

1. Load time of a Harry-Potter-sized bundle (8 subjects x 1211 TRs x 25,000 voxels,
   float32, about 1 GB), written to a temporary folder by this script, loaded memory-mapped
   with ``load_bundle`` (default verification and ``verify=False``). Goal: under 2 s.
2. Windows per second of ``BrainDataModule.train_dataloader()`` on that bundle (5-TR windows
   of RSVP words, a byte-level BPE tokenizer trained here, batch 16) beside the training
   rate (windows per second) of a tiny GPT-2 (``GPT2Config``; LoRA via peft; LM loss + a
   linear brain head with a Pearson loss; AdamW; batch 16) on batches of the same loader.
   Goal: data at least 50x faster than the model consumes it.

The page cache is warm after writing (the script cannot drop it without root), so (1) is the
warm-cache figure; memory-mapped loading reads no voxel data either way.

    python benchmarks/data_pipeline.py                 # full size, < 2 min on 2 CPU cores
    python benchmarks/data_pipeline.py --subjects 2 --voxels 4000   # quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from brainmis.data.records import BrainDataset, Run, Subject

LOAD_GOAL_S = 2.0
RATIO_GOAL = 50.0
RUN_LENGTHS = (338, 338, 338, 337)  # 1351 TR times over 4 runs, as in Harry Potter
TR = 2.0
TRIM_START, TRIM_END = 20, 15  # 1351 - 4 * 35 = 1211 kept TRs
WORD_SECONDS = 0.5  # RSVP rate
SYLLABLES = ("ta", "ri", "mo", "ne", "sa", "lu", "ko", "pi", "den", "har", "vel", "os", "qu", "im")


def pseudo_words(n_words: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_words,)`` word-like strings of 1-3 syllables from a vocabulary of ~1,500 forms,
    some with punctuation attached as in the HP word list."""
    vocabulary = ["".join(rng.choice(SYLLABLES, size=rng.integers(1, 4))) for _ in range(1500)]
    words = rng.choice(vocabulary, size=n_words, p=None)
    punctuation = rng.choice(["", "", "", "", "", ",", "."], size=n_words)
    return np.char.add(words.astype(str), punctuation.astype(str))


def hp_sized_dataset(n_subjects: int, n_voxels: int, seed: int = 0) -> BrainDataset:
    """An HP-shaped dataset: 4 runs, 1211 kept TRs, RSVP words from 20 s into each run,
    random responses, a ``language`` ROI of a fifth of the voxels, a precomputed ceiling."""
    rng = np.random.default_rng(seed)
    stimuli = []
    for length in RUN_LENGTHS:
        tr_times = TR * np.arange(length, dtype=np.float64)
        onsets = np.arange(20.0, tr_times[-1] - 30.0, WORD_SECONDS)
        kept = np.arange(TRIM_START, length - TRIM_END, dtype=np.int64)
        stimuli.append((tr_times, pseudo_words(len(onsets), rng), onsets, kept))
    subjects = {}
    for index in range(n_subjects):
        name = "FHIJKLMN"[index] if index < 8 else f"S{index}"
        runs = [
            Run(
                name=f"run{k + 1}",
                tr_times=tr_times,
                responses=rng.standard_normal((len(kept), n_voxels), dtype=np.float32),
                kept_trs=kept,
                words=words,
                word_onsets=onsets,
            )
            for k, (tr_times, words, onsets, kept) in enumerate(stimuli)
        ]
        roi = np.zeros(n_voxels, dtype=bool)
        roi[rng.choice(n_voxels, size=n_voxels // 5, replace=False)] = True
        subjects[name] = Subject(
            name=name,
            runs=runs,
            roi_masks={"language": roi},
            noise_ceiling=rng.uniform(0.0, 0.6, size=n_voxels),
        )
    return BrainDataset(name="hp_sized_benchmark", tr=TR, subjects=subjects)


def train_bpe_tokenizer(dataset: BrainDataset, folder: Path) -> Path:
    """A GPT-2-like byte-level BPE tokenizer trained on the dataset's words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    subject = next(iter(dataset.subjects.values()))
    text = [" ".join(run.words.tolist()) for run in subject.runs]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(text, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    tokenizer.save_pretrained(folder)
    return folder


def time_bundle_load(bundle: Path, repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` seconds of ``load_bundle`` with default verification and without."""
    from brainmis.data.bundle import load_bundle

    out = {}
    for label, kwargs in (("default", {}), ("verify=False", {"verify": False})):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            dataset = load_bundle(bundle, mmap=True, **kwargs)
            best = min(best, time.perf_counter() - start)
            del dataset
        out[label] = best
    return out


def data_windows_per_second(loader_factory, epochs: int) -> tuple[float, int]:
    """Windows per second over ``epochs`` passes of fresh training loaders."""
    n_windows = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader_factory():
            n_windows += len(batch["sample_ids"])
    return n_windows / (time.perf_counter() - start), n_windows


def model_windows_per_second(
    batches: list[dict[str, torch.Tensor]],
    vocab_size: int,
    eos_token_id: int,
    n_voxels: int,
    context_trs: int,
    hidden: int,
    layers: int,
    heads: int,
    max_steps: int,
    seconds: float,
    device: torch.device,
) -> tuple[float, int]:
    """Training windows per second of a tiny GPT-2 with LoRA and a linear brain head, timed
    over at least 3 steps and until ``seconds`` have passed or ``max_steps`` were taken;
    returns the rate and the number of steps timed."""
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    from brainmis.models.features import pool_groups

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=hidden,
        n_layer=layers,
        n_head=heads,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
    )
    lora = LoraConfig(
        r=8,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["c_attn", "c_proj", "c_fc"],
        fan_in_fan_out=True,
    )
    model = get_peft_model(GPT2LMHeadModel(config), lora).to(device)
    head = torch.nn.Linear(context_trs * hidden, n_voxels).to(device)
    parameters = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=5e-4, weight_decay=0.0)

    def step(batch: dict[str, torch.Tensor]) -> None:
        batch = {key: value.to(device) for key, value in batch.items()}
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=labels,
            output_hidden_states=True,
        )
        features = pool_groups(out.hidden_states[-1], batch["group_ids"], context_trs)
        predicted = head(features)
        p = predicted - predicted.mean(0)
        t = batch["targets"] - batch["targets"].mean(0)
        r = (p * t).sum(0) / (p.norm(dim=0) * t.norm(dim=0)).clamp(min=1e-8)
        loss = 0.1 * out.loss - 10.0 * r.mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:2]:  # warm-up
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    n_windows, n_steps = 0, 0
    start = time.perf_counter()
    while n_steps < max_steps and (n_steps < 3 or time.perf_counter() - start < seconds):
        batch = batches[n_steps % len(batches)]
        step(batch)
        n_windows += len(batch["sample_ids"])
        n_steps += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n_windows / (time.perf_counter() - start), n_steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--voxels", type=int, default=25_000)
    parser.add_argument("--epochs", type=int, default=20, help="loader passes timed")
    parser.add_argument("--model-steps", type=int, default=200, help="most training steps timed")
    parser.add_argument("--model-seconds", type=float, default=10.0, help="time budget of steps")
    parser.add_argument("--hidden", type=int, default=64, help="tiny GPT-2 width (demo: 64)")
    parser.add_argument("--layers", type=int, default=2, help="tiny GPT-2 depth (demo: 2)")
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto", help="model device: auto, cpu, cuda")
    args = parser.parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )

    from brainmis.data.bundle import write_bundle
    from brainmis.data.datamodule import BrainDataModule

    with tempfile.TemporaryDirectory(prefix="brainmis-bench-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        dataset = hp_sized_dataset(args.subjects, args.voxels)
        n_kept = sum(len(run.kept_trs) for run in next(iter(dataset.subjects.values())).runs)
        bundle = Path(write_bundle(dataset, tmp / "bundle"))
        tokenizer_path = train_bpe_tokenizer(dataset, tmp / "tokenizer")
        del dataset
        size_gb = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) / 1e9
        print(
            f"bundle: {args.subjects} subjects x {n_kept} TRs x {args.voxels} voxels float32, "
            f"{size_gb:.2f} GB on disk, written in {time.perf_counter() - start:.1f} s"
        )

        loads = time_bundle_load(bundle)
        print("\n(1) bundle load, memory-mapped (warm page cache, best of 3)")
        for label, seconds in loads.items():
            print(
                f"  load_bundle {label:<13} {seconds:8.3f} s   goal {LOAD_GOAL_S:.1f} s   "
                f"ratio goal/ours {LOAD_GOAL_S / seconds:7.1f}x"
            )

        start = time.perf_counter()
        datamodule = BrainDataModule(
            bundle=str(bundle), tokenizer_path=str(tokenizer_path), batch_size=args.batch_size
        )
        init_s = time.perf_counter() - start
        start = time.perf_counter()
        datamodule.setup("fit")
        setup_s = time.perf_counter() - start
        lengths = [len(tokens.input_ids) for tokens in datamodule.tokens]
        print(
            f"\n    BrainDataModule __init__ {init_s:.2f} s (load + voxel selection: "
            f"{datamodule.n_voxels} voxels), setup {setup_s:.2f} s (z-score + tokenize "
            f"{len(datamodule.window_table)} windows, {np.mean(lengths):.1f} tokens on average)"
        )

        data_rate, n_windows = data_windows_per_second(datamodule.train_dataloader, args.epochs)
        batches = list(datamodule.train_dataloader())
        model_rate, model_steps = model_windows_per_second(
            batches,
            vocab_size=len(datamodule.tokenizer),
            eos_token_id=datamodule.tokenizer.eos_token_id,
            n_voxels=datamodule.n_voxels,
            context_trs=datamodule.context_trs,
            hidden=args.hidden,
            layers=args.layers,
            heads=args.heads,
            max_steps=args.model_steps,
            seconds=args.model_seconds,
            device=device,
        )
        ratio = data_rate / model_rate
        print(f"\n(2) throughput, batch {args.batch_size}, {datamodule.n_voxels} target voxels")
        print(
            f"  train_dataloader (num_workers=0)  {data_rate:10.0f} windows/s ({n_windows} timed)"
        )
        print(
            f"  tiny GPT-2 LoRA step ({args.layers}x{args.hidden}, {device.type})"
            f"  {model_rate:10.0f} windows/s ({model_steps} steps timed)"
        )
        verdict = "meets" if ratio >= RATIO_GOAL else "MISSES"
        print(f"  ratio data/model {ratio:10.1f}x   goal >= {RATIO_GOAL:.0f}x   ({verdict} goal)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
