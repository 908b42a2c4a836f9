"""Shared pieces of the training benchmarks (``train_step.py``, ``gpu_train.py``).

Both scripts time the same thing two ways on one ``BrainMisalignmentModule``:

- **framework**: ``lightning.Trainer.fit`` of the module (its real ``training_step`` with all
  its ``self.log`` calls, Lightning's optimizer loop, a TensorBoard logger);
- **bare**: a hand-written PyTorch loop over the *same* peft backbone and head objects, the
  same batches and precision: one forward with hidden states, ``pool_groups``, gradient
  reversal, linear head, Pearson loss + LM loss + head penalty, backward, AdamW step.

A step's time is measured from the start of one step to the start of the next, so anything
the framework does between steps (hooks, logging, loop bookkeeping) counts. Warm-up steps
are discarded. Rounds alternate the order (framework, bare, bare, framework, ...) so that a
slow drift of the shared machine's load affects both alike.

Round 0 of both loops starts from the same weights and the same RNG state, so after it both
must hold the same trainable weights: this is checked and printed, proving that the bare
loop does the same computation as the framework.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from brainmis.data.window_tokens import WindowCollator, pad_token_id, tokenize_windows
from brainmis.models.features import pool_groups
from brainmis.models.gradient_reversal import grl_strength, reverse_gradient
from brainmis.models.losses import pearson_loss
from brainmis.models.masking import IGNORE_INDEX
from brainmis.models.module import REVERSED_CONDITIONS, BrainMisalignmentModule
from brainmis.models.tiny import DEFAULT_TEXT

HP_WORDS_PER_TR = 4  # Harry Potter: RSVP at 0.5 s per word, TR 2 s
CONTEXT_TRS = 5
BATCH_SIZE = 16
N_DISTINCT_BATCHES = 8  # cycled; windows differ in length like real ones
SAME_WEIGHTS_TOLERANCE = 1e-4
RATIO_GOAL = (
    1.10  # framework/bare on CPU (issue 3)  # max |difference| of trainable weights after round 0
)


def quiet_libraries() -> None:
    """Silence Lightning's per-fit banners, transformers' progress bars and library warnings,
    so that the printed comparison stays readable (a benchmark runs many short fits)."""
    import logging
    import warnings

    from transformers.utils import logging as transformers_logging

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


# ---------------------------------------------------------------------------- batches
def hp_window_batches(
    tokenizer: Any,
    n_voxels: int,
    n_batches: int = N_DISTINCT_BATCHES,
    batch_size: int = BATCH_SIZE,
    context_trs: int = CONTEXT_TRS,
    words_per_tr: int = HP_WORDS_PER_TR,
    seed: int = 0,
) -> list[dict[str, torch.Tensor]]:
    """Batches of Harry-Potter-like windows, in the batch contract of docs/architecture.md.

    Each window holds ``context_trs`` TR groups of ``words_per_tr`` consecutive words of the
    package's narrative text (consecutive windows shifted by one TR, as in the datamodule),
    tokenized and collated by ``brainmis.data.window_tokens``; targets are ``(B, n_voxels)``
    standard-normal float32 (z-scored responses).
    """
    words = DEFAULT_TEXT.read_text(encoding="utf-8").split()
    n_windows = n_batches * batch_size
    window_words = context_trs * words_per_tr
    windows = []
    for index in range(n_windows):
        start = (index * words_per_tr) % (len(words) - window_words)
        span = words[start : start + window_words]
        windows.append(
            [span[g * words_per_tr : (g + 1) * words_per_tr] for g in range(context_trs)]
        )
    tokenized = tokenize_windows(tokenizer, windows, max_length=512)
    collate = WindowCollator(pad_id=pad_token_id(tokenizer))
    rng = np.random.default_rng(seed)
    batches = []
    for b in range(n_batches):
        items = [
            {
                "input_ids": window.input_ids,
                "group_ids": window.group_ids,
                "targets": rng.standard_normal(n_voxels).astype(np.float32),
                "sample_id": b * batch_size + i,
            }
            for i, window in enumerate(tokenized[b * batch_size : (b + 1) * batch_size])
        ]
        batches.append(collate(items))
    return batches


def mean_tokens_per_window(batches: list[dict[str, torch.Tensor]]) -> float:
    """Mean number of real (unpadded) tokens per window."""
    total = sum(float(b["attention_mask"].sum()) for b in batches)
    return total / sum(len(b["input_ids"]) for b in batches)


class CycledBatches:
    """``n_steps`` ready batches taken round-robin from ``batches``: an iterable with a
    length that Lightning accepts as a train dataloader (a plain list would be read as a
    collection of loaders). Uses no random numbers."""

    def __init__(self, batches: list[dict[str, torch.Tensor]], n_steps: int):
        self.batches = batches
        self.n_steps = n_steps

    def __len__(self) -> int:
        return self.n_steps

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for step in range(self.n_steps):
            yield self.batches[step % len(self.batches)]


# ---------------------------------------------------------------------------- timing
@dataclass
class StepClock:
    """Times steps ``warmup .. warmup + steps - 1`` in chunks of ``chunk`` steps.

    ``mark(i)`` is called at the start of step ``i`` (and at the start of one extra step,
    ``i = warmup + steps``, which closes the last interval). On a GPU ``sync`` waits for the
    device at the chunk boundaries only, so the host may run ahead inside a chunk as in real
    training. Both wall time and this process's CPU time are kept: on a busy shared CPU the
    process CPU time (single-threaded torch) is the steadier measure of the work done.
    """

    warmup: int
    steps: int
    chunk: int = 1
    sync: Callable[[], None] = lambda: None
    wall_marks: list[float] = field(default_factory=list)
    cpu_marks: list[float] = field(default_factory=list)

    def mark(self, step: int) -> None:
        offset = step - self.warmup
        if 0 <= offset <= self.steps and (offset % self.chunk == 0 or offset == self.steps):
            self.sync()
            self.wall_marks.append(time.perf_counter())
            self.cpu_marks.append(time.process_time())

    def ms_per_step(self, clock: str = "wall") -> list[float]:
        """Milliseconds per step of every timed chunk, by ``wall`` or process ``cpu`` time."""
        marks = self.wall_marks if clock == "wall" else self.cpu_marks
        bounds = list(range(0, self.steps, self.chunk)) + [self.steps]
        return [
            1000.0 * (marks[k + 1] - marks[k]) / (bounds[k + 1] - bounds[k])
            for k in range(len(marks) - 1)
        ]


class FrameworkClock(Callback):
    """Marks the clock at every ``on_train_batch_start`` and keeps every step's loss."""

    def __init__(self, clock: StepClock):
        self.clock = clock
        self.losses: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: Any, batch: Any, batch_idx: int):
        self.clock.mark(batch_idx)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ):
        self.losses.append(outputs["loss"].detach())


def rng_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The CPU and (if any) CUDA RNG states."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    torch.set_rng_state(state[0])
    if state[1]:
        torch.cuda.set_rng_state_all(state[1])


# ---------------------------------------------------------------------------- the two loops
@dataclass
class LoopResult:
    """One round of one loop: wall and process-CPU ms/step of every timed chunk, the loss of
    every step, and peak device memory in bytes (GPU only, else None)."""

    ms_per_step: list[float]
    cpu_ms_per_step: list[float]
    losses: list[float]
    peak_memory: int | None = None


def trainable_snapshot(module: BrainMisalignmentModule) -> dict[str, torch.Tensor]:
    """CPU copies of the trainable weights (LoRA + head)."""
    return {
        name: p.detach().to("cpu", copy=True)
        for name, p in module.named_parameters()
        if p.requires_grad
    }


def restore_trainable(module: BrainMisalignmentModule, snapshot: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in snapshot:
                p.copy_(snapshot[name].to(p.device))


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def run_framework(
    module: BrainMisalignmentModule,
    batches: list[dict[str, torch.Tensor]],
    clock: StepClock,
    accelerator: str,
    precision: str,
    log_dir: Path,
) -> tuple[LoopResult, tuple[torch.Tensor, list[torch.Tensor]]]:
    """``Trainer.fit`` of the module for ``warmup + steps + 1`` steps (the extra step closes
    the last timed interval). A TensorBoard logger as in real runs; no progress bar, model
    summary, checkpointing or validation (none of them run per step in a real fit either,
    except the progress bar, whose refresh would print here). Also returns the RNG state the
    first step's backbone forward started from (after all of the module's own seeding)."""
    recorder = FrameworkClock(clock)
    first_forward_rng: list[tuple[torch.Tensor, list[torch.Tensor]]] = []

    def keep_rng_state(*_: Any) -> None:  # the RNG state the first step's forward starts from
        if not first_forward_rng:
            first_forward_rng.append(rng_state())

    hook = module.backbone.register_forward_pre_hook(keep_rng_state)
    n_steps = clock.warmup + clock.steps + 1
    trainer = Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=n_steps,
        max_epochs=1,
        logger=TensorBoardLogger(str(log_dir), name="bench"),
        callbacks=[recorder],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    if accelerator == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        trainer.fit(module, train_dataloaders=CycledBatches(batches, n_steps))
    finally:
        hook.remove()
    peak = torch.cuda.max_memory_allocated() if accelerator == "cuda" else None
    losses = [float(loss) for loss in recorder.losses]
    result = LoopResult(clock.ms_per_step(), clock.ms_per_step("cpu"), losses, peak)
    return result, first_forward_rng[0]


def bare_loop(
    module: BrainMisalignmentModule,
    batches: list[dict[str, torch.Tensor]],
    clock: StepClock,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager],
    start_rng: tuple[torch.Tensor, list[torch.Tensor]] | None = None,
) -> LoopResult:
    """The hand-written loop: plain PyTorch on the module's peft backbone and head objects,
    with the module's hyper-parameters and the same GRL schedule over the same step count as
    the framework run (``warmup + steps + 1`` steps). Nothing of Lightning runs."""
    hp = module.hparams
    backbone, head = module.backbone.to(device), module.head.to(device)
    backbone.train()
    head.train()
    adapters = [p for p in backbone.parameters() if p.requires_grad]
    head_parameters = [p for p in head.parameters() if p.requires_grad]
    head_lr = hp.lr if hp.get("head_lr") is None else hp.head_lr  # the head learns faster
    optimizer = torch.optim.AdamW(
        [{"params": adapters}, {"params": head_parameters, "lr": head_lr}],
        lr=hp.lr,
        weight_decay=hp.weight_decay,
    )
    reversed_head = module.condition in REVERSED_CONDITIONS
    detached_head = module.condition == "lm_only"
    n_steps = clock.warmup + clock.steps + 1  # as the framework run: the last closes the clock
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    losses = []
    for step, batch in enumerate(CycledBatches(batches, n_steps)):
        clock.mark(step)
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
        strength = grl_strength(step / n_steps, hp.grl_lambda, hp.grl_schedule, hp.grl_gamma)
        if step == 0 and start_rng is not None:
            set_rng_state(start_rng)  # where the framework's first forward started
        with autocast():
            out = backbone(
                input_ids=input_ids,
                attention_mask=attention_mask,
                labels=labels,
                output_hidden_states=True,
            )
            features = pool_groups(
                out.hidden_states[module.feature_layer], batch["group_ids"], module.context_trs
            )
            if reversed_head:
                features = reverse_gradient(features, strength)
            elif detached_head:
                features = features.detach()
            brain_loss = pearson_loss(head(features), batch["targets"])
            loss = hp.w_lm * out.loss + hp.w_ba * brain_loss + head.penalty()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return LoopResult(
        clock.ms_per_step(), clock.ms_per_step("cpu"), [float(x) for x in losses], peak
    )


def autocast_factory(device: torch.device, precision: str) -> Callable[[], AbstractContextManager]:
    """What the bare loop wraps its forward in to match Lightning's ``precision``."""
    if precision == "bf16-mixed":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    if precision in ("32-true", "32"):
        return nullcontext
    raise ValueError(f"precision {precision!r} is not benchmarked; use 32-true or bf16-mixed")


# ---------------------------------------------------------------------------- comparison
@dataclass
class Comparison:
    """Both loops' per-chunk wall ms/step (and process-CPU ms/step) pooled over rounds, and
    the round-0 equivalence check."""

    framework: list[float]
    bare: list[float]
    framework_cpu: list[float]
    bare_cpu: list[float]
    framework_peak: int | None
    bare_peak: int | None
    weights_difference: float
    first_losses: tuple[float, float]

    @property
    def framework_ms(self) -> float:
        return statistics.median(self.framework)

    @property
    def bare_ms(self) -> float:
        return statistics.median(self.bare)

    @property
    def ratio(self) -> float:
        return self.framework_ms / self.bare_ms

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(self.framework_cpu) / statistics.median(self.bare_cpu)

    @property
    def same_computation(self) -> bool:
        return self.weights_difference <= SAME_WEIGHTS_TOLERANCE


def compare_loops(
    module: BrainMisalignmentModule,
    batches: list[dict[str, torch.Tensor]],
    warmup: int,
    steps: int,
    rounds: int,
    precision: str,
    device: torch.device,
    chunk: int = 1,
) -> Comparison:
    """Time ``rounds`` rounds of each loop: F B, then B F, F B, ... (round 0 is always F B:
    the bare loop's round 0 starts from the RNG state of the framework's first step).

    Round 0 of both starts from the module's current trainable weights; the trainable weights
    after it (same number of steps) are compared.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    accelerator = "cuda" if device.type == "cuda" else "cpu"
    autocast = autocast_factory(device, precision)
    initial = trainable_snapshot(module)
    times: dict[str, list[float]] = {"framework": [], "bare": []}
    cpu_times: dict[str, list[float]] = {"framework": [], "bare": []}
    peaks: dict[str, int | None] = {"framework": None, "bare": None}
    after_round0: dict[str, dict[str, torch.Tensor]] = {}
    first_losses: dict[str, float] = {}
    start_rng = None
    with tempfile.TemporaryDirectory(prefix="brainmis-bench-logs-") as log_dir:
        for round_index in range(rounds):
            order = ("bare", "framework") if round_index % 2 else ("framework", "bare")
            for which in order:
                clock = StepClock(warmup, steps, chunk, sync)
                if round_index == 0:
                    restore_trainable(module, initial)
                if which == "framework":
                    result, forward_rng = run_framework(
                        module, batches, clock, accelerator, precision, Path(log_dir)
                    )
                    start_rng = forward_rng if round_index == 0 else start_rng
                else:
                    rng = start_rng if round_index == 0 else None
                    result = bare_loop(module, batches, clock, device, autocast, rng)
                times[which] += result.ms_per_step
                cpu_times[which] += result.cpu_ms_per_step
                if result.peak_memory is not None:
                    peaks[which] = max(peaks[which] or 0, result.peak_memory)
                if round_index == 0:
                    after_round0[which] = trainable_snapshot(module)
                    first_losses[which] = result.losses[0]
    return Comparison(
        framework=times["framework"],
        bare=times["bare"],
        framework_cpu=cpu_times["framework"],
        bare_cpu=cpu_times["bare"],
        framework_peak=peaks["framework"],
        bare_peak=peaks["bare"],
        weights_difference=max_difference(after_round0["framework"], after_round0["bare"]),
        first_losses=(first_losses["framework"], first_losses["bare"]),
    )


def describe(
    label: str, comparison: Comparison, tokens_per_step: float, show_cpu: bool
) -> list[str]:
    """Printable lines for one model: both loops' median ms/step and tokens/s, the ratio
    and the equivalence check; with ``show_cpu`` also the process-CPU figures."""
    lines = [
        f"{label}",
        f"  {'loop':<10} {'median ms/step':>15} {'tokens/s':>10} {'timed chunks':>13}"
        + (f" {'CPU-time ms/step':>17}" if show_cpu else ""),
    ]
    rows = (
        ("framework", comparison.framework, comparison.framework_cpu),
        ("bare", comparison.bare, comparison.bare_cpu),
    )
    for name, values, cpu_values in rows:
        ms = statistics.median(values)
        line = f"  {name:<10} {ms:>15.2f} {tokens_per_step / (ms / 1000):>10.0f} {len(values):>13}"
        if show_cpu:
            line += f" {statistics.median(cpu_values):>17.2f}"
        lines.append(line)
    verdict = "same computation" if comparison.same_computation else "DIFFERENT computation"
    ratio_line = f"  ratio framework/bare: {comparison.ratio:.3f} wall"
    if show_cpu:
        ratio_line += f", {comparison.cpu_ratio:.3f} CPU time"
    lines.append(f"{ratio_line}  (goal <= {RATIO_GOAL:.2f})")
    lines.append(
        f"  check: {verdict}: max |trainable weight difference| after round 0"
        f" {comparison.weights_difference:.2e} (tolerance {SAME_WEIGHTS_TOLERANCE:.0e}),"
        f" first-step loss {comparison.first_losses[0]:.5f} vs {comparison.first_losses[1]:.5f}"
    )
    return lines
