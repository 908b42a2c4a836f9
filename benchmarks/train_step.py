"""Training-step time: the framework (Lightning ``Trainer.fit`` of ``BrainMisalignmentModule``)
beside a bare hand-written PyTorch + peft loop on the same model objects, batch and precision.

Two models, each with LoRA (the family's default targets, r=8) and a linear brain head,
condition ``misaligned`` (gradient reversal, DANN ramp), batch 16 of Harry-Potter-like
windows (5 TRs x 4 words, ~40 tokens):

(a) the project's tiny GPT-2 (``make_tiny_model``: 64 hidden, 2 layers, 1,000-token
    tokenizer), 200 voxels;
(b) a GPT-2-small-sized random GPT-2 (12 layers, 768 hidden, 12 heads, 1024 positions,
    vocabulary 50,257 as GPT-2's embedding and LM head; the tokenizer is a 1,000-token BPE
    trained on the package's narrative text, so ids stay below 1,000: this changes no cost),
    4,000 voxels (an HP language-ROI-sized selection).

Printed per model: median ms/step of each loop (warm-up steps discarded), tokens/s, the ratio
framework/bare (goal <= 1.10 on CPU), and a check that both loops computed the same thing
(trainable weights equal after the first round). See ``_training_common.py`` for the method.

    python benchmarks/train_step.py              # both models, ~2-3 min on 2 CPU cores
    python benchmarks/train_step.py --smoke      # tiny model only, a few steps (tests)
    python benchmarks/train_step.py --precision bf16-mixed --small-steps 3
    python benchmarks/train_step.py --diagnose   # + framework with self.log switched off
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _training_common import (  # noqa: E402
    RATIO_GOAL,
    StepClock,
    autocast_factory,
    compare_loops,
    describe,
    hp_window_batches,
    mean_tokens_per_window,
    quiet_libraries,
    run_framework,
)

from brainmis.models.module import BrainMisalignmentModule  # noqa: E402
from brainmis.models.tiny import DEFAULT_TEXT, make_tiny_model, train_tokenizer  # noqa: E402

GPT2_SMALL = dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257)
TOKENIZER_VOCAB = 1000


def gpt2_small_folder(out: Path, seed: int = 0) -> Path:
    """Save a randomly initialised GPT-2-small-sized model and a 1,000-token BPE tokenizer
    (trained on the narrative text) into ``out`` with ``save_pretrained``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = train_tokenizer("gpt2", DEFAULT_TEXT.read_text(encoding="utf-8"), TOKENIZER_VOCAB)
    config = GPT2Config(
        **GPT2_SMALL, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def diagnose_logging(
    module: BrainMisalignmentModule, batches: list, warmup: int, steps: int, precision: str
) -> tuple[float, float]:
    """Median wall and process-CPU ms/step of the framework with the module's ``self.log``
    made a no-op: the share of the step that per-step logging costs."""
    module.log = lambda *args, **kwargs: None  # instance attribute shadows the method
    try:
        with tempfile.TemporaryDirectory() as log_dir:
            result, _ = run_framework(
                module, batches, StepClock(warmup, steps), "cpu", precision, Path(log_dir)
            )
    finally:
        del module.log
    return statistics.median(result.ms_per_step), statistics.median(result.cpu_ms_per_step)


def benchmark_model(
    label: str,
    folder: Path,
    n_voxels: int,
    warmup: int,
    steps: int,
    rounds: int,
    precision: str,
    diagnose: bool,
) -> bool:
    """Print one model's comparison; return whether both loops computed the same thing."""
    module = BrainMisalignmentModule(str(folder), n_voxels=n_voxels, condition="misaligned")
    batches = hp_window_batches(module.tokenizer, n_voxels)
    tokens = mean_tokens_per_window(batches) * len(batches[0]["input_ids"])
    autocast_factory(torch.device("cpu"), precision)  # refuse an unsupported precision early
    comparison = compare_loops(
        module, batches, warmup, steps, rounds, precision, torch.device("cpu")
    )
    n_params = sum(p.numel() for p in module.backbone.parameters())
    n_trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    header = (
        f"{label}: {n_params / 1e6:.1f} M parameters ({n_trainable / 1e6:.2f} M trainable:"
        f" LoRA + head), {n_voxels} voxels, batch {len(batches[0]['input_ids'])},"
        f" {tokens / len(batches[0]['input_ids']):.1f} tokens/window, {precision},"
        f" warm-up {warmup}, timed {steps} x {rounds} rounds"
    )
    for line in describe(header, comparison, tokens, show_cpu=True):
        print(line, flush=True)
    if diagnose:
        quiet_ms, quiet_cpu_ms = diagnose_logging(module, batches, warmup, steps, precision)
        logged_cpu_ms = statistics.median(comparison.framework_cpu)
        print(
            f"  diagnose: framework with self.log a no-op: {quiet_ms:.2f} ms/step wall,"
            f" {quiet_cpu_ms:.2f} CPU time; per-step logging costs about"
            f" {comparison.framework_ms - quiet_ms:+.2f} ms wall,"
            f" {logged_cpu_ms - quiet_cpu_ms:+.2f} ms CPU time",
            flush=True,
        )
    return comparison.same_computation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model only, few steps")
    parser.add_argument("--tiny-steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--tiny-warmup", type=int, default=5)
    parser.add_argument("--tiny-voxels", type=int, default=200)
    parser.add_argument("--small-steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--small-warmup", type=int, default=1)
    parser.add_argument("--small-voxels", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=4, help="tiny: rounds per loop (F B, B F..)")
    parser.add_argument("--small-rounds", type=int, default=2, help="GPT-2-small: rounds per loop")
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--skip-small", action="store_true", help="tiny model only")
    parser.add_argument("--diagnose", action="store_true", help="also time without self.log")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: steadiest on a shared machine; both loops use it)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.tiny_steps, args.tiny_warmup, args.rounds, args.skip_small = 2, 1, 2, True
    torch.set_num_threads(args.threads)
    quiet_libraries()
    print(
        f"train_step benchmark: CPU, {torch.get_num_threads()} torch threads,"
        f" torch {torch.__version__}; ratio goal <= {RATIO_GOAL:.2f}",
        flush=True,
    )
    all_same = True
    with tempfile.TemporaryDirectory(prefix="brainmis-bench-") as tmp:
        tiny = make_tiny_model("gpt2", out=Path(tmp) / "tiny")
        all_same &= benchmark_model(
            "(a) tiny GPT-2 (make_tiny_model)",
            tiny,
            args.tiny_voxels,
            args.tiny_warmup,
            args.tiny_steps,
            args.rounds,
            args.precision,
            args.diagnose,
        )
        if not args.skip_small:
            small = gpt2_small_folder(Path(tmp) / "gpt2-small")
            all_same &= benchmark_model(
                "(b) GPT-2-small-sized random GPT-2",
                small,
                args.small_voxels,
                args.small_warmup,
                args.small_steps,
                args.small_rounds,
                args.precision,
                args.diagnose,
            )
    if not all_same:
        print("error: the bare loop and the framework did not compute the same thing")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
