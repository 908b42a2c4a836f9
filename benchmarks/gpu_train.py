"""GPU training throughput of a Llama-3.2-1B-shaped model: framework beside a bare loop.

A randomly initialised Llama with Llama-3.2-1B's shape (hidden 2048, 16 layers, 32 heads,
8 KV heads, intermediate 8192, vocabulary 128,256, tied embeddings, RoPE theta 500,000),
base weights in bfloat16, LoRA r=8 on ``q_proj,k_proj,v_proj,o_proj`` (fp32 adapters), a
linear brain head (4,000 voxels), condition ``misaligned``, ``bf16-mixed``, batch 16 of
Harry-Potter-like windows (5 TRs x 4 words). The tokenizer is a 1,000-token BPE trained on
the package's narrative text (ids below 1,000; embedding and LM head keep 128,256 rows, so
the cost is the real model's).

Printed: tokens/s and median ms/step of the framework (Lightning ``Trainer.fit`` of
``BrainMisalignmentModule``) and of a bare PyTorch + peft loop on the same objects, the ratio
framework/bare, peak GPU memory of each (``torch.cuda.max_memory_allocated``), and a check
that both computed the same thing. On a GPU, steps are timed in chunks of ``--chunk`` steps
with a device synchronisation only at chunk boundaries.

    python benchmarks/gpu_train.py              # needs a CUDA GPU (~2.5 GB of bf16 weights)
    python benchmarks/gpu_train.py --smoke      # scaled-down Llama on the CPU, same code path
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _training_common import (  # noqa: E402
    compare_loops,
    describe,
    hp_window_batches,
    mean_tokens_per_window,
    quiet_libraries,
)

from brainmis.models.module import BrainMisalignmentModule  # noqa: E402
from brainmis.models.tiny import DEFAULT_TEXT, train_tokenizer  # noqa: E402

LLAMA_3_2_1B = dict(
    hidden_size=2048,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=8192,
    vocab_size=128256,
    max_position_embeddings=131072,
    rms_norm_eps=1e-5,
)
ROPE_THETA = 500000.0
# Same structure, scaled down for --smoke on a CPU (GQA kept: 4 heads over 2 KV heads).
LLAMA_SMOKE = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=256,
    vocab_size=4096,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
)
TOKENIZER_VOCAB = 1000
GIB = 1024**3


def llama_folder(out: Path, shape: dict, device: torch.device, seed: int = 0) -> Path:
    """Save a randomly initialised bf16 Llama of ``shape`` (tied embeddings, RoPE theta
    500,000) and a 1,000-token BPE tokenizer into ``out`` with ``save_pretrained``.
    Initialised on ``device`` (fast on a GPU), saved from there."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer("llama", DEFAULT_TEXT.read_text(encoding="utf-8"), TOKENIZER_VOCAB)
    config = LlamaConfig(
        **shape,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        with torch.device(device):
            model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="scaled-down Llama on the CPU")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=5, help="steps per timed chunk (GPU)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per loop (F B, B F, ...)")
    parser.add_argument("--voxels", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="bf16-mixed", choices=["bf16-mixed", "32-true"])
    args = parser.parse_args(argv)
    quiet_libraries()
    if args.smoke:
        device, shape = torch.device("cpu"), LLAMA_SMOKE
        args.steps, args.warmup, args.chunk, args.rounds = 1, 1, 1, 2
        args.voxels = min(args.voxels, 100)
        torch.set_num_threads(1)  # steadiest on a shared machine
        card = "CPU (smoke: scaled-down Llama, 1 thread)"
    else:
        if not torch.cuda.is_available():
            print("gpu_train.py needs a CUDA GPU; run with --smoke for the CPU code-path check")
            return 2
        device, shape = torch.device("cuda"), LLAMA_3_2_1B
        card = torch.cuda.get_device_name(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    print(
        f"gpu_train benchmark on {card}; torch {torch.__version__}, {args.precision},"
        f" Llama {shape['num_hidden_layers']} layers x {shape['hidden_size']} hidden,"
        f" vocabulary {shape['vocab_size']}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="brainmis-gpu-bench-") as tmp:
        folder = llama_folder(Path(tmp) / "llama", shape, device)
        module = BrainMisalignmentModule(
            str(folder),
            n_voxels=args.voxels,
            condition="misaligned",
            dtype="bfloat16",
            lora_r=8,
            lora_alpha=8,
        )
    batches = hp_window_batches(module.tokenizer, args.voxels, batch_size=args.batch_size)
    tokens = mean_tokens_per_window(batches) * args.batch_size
    comparison = compare_loops(
        module,
        batches,
        args.warmup,
        args.steps,
        args.rounds,
        args.precision,
        device,
        chunk=args.chunk,
    )
    n_params = sum(p.numel() for p in module.backbone.parameters())
    n_trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    label = "scaled-down Llama (smoke)" if args.smoke else "Llama-3.2-1B-shaped"
    header = (
        f"{label} ({n_params / 1e6:.1f} M parameters, {n_trainable / 1e6:.2f} M"
        f" trainable: LoRA q,k,v,o + head), {args.voxels} voxels, batch {args.batch_size},"
        f" {tokens / args.batch_size:.1f} tokens/window, warm-up {args.warmup},"
        f" timed {args.steps} x {args.rounds} rounds in chunks of {args.chunk}"
    )
    for line in describe(header, comparison, tokens, show_cpu=device.type == "cpu"):
        print(line, flush=True)
    if comparison.framework_peak is not None:
        print(
            f"  peak GPU memory: framework {comparison.framework_peak / GIB:.2f} GiB,"
            f" bare {comparison.bare_peak / GIB:.2f} GiB",
            flush=True,
        )
    if not comparison.same_computation:
        print("error: the bare loop and the framework did not compute the same thing")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
