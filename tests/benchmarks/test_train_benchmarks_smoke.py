"""The training benchmarks run end to end in their smallest mode on the CPU, so they cannot rot.

Each script exits non-zero when its bare loop and the framework did not compute the same
thing (trainable weights after the first round), so these tests check that too. No timing
is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_script(name: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    return completed.stdout


def test_train_step_smoke_compares_framework_with_bare_loop():
    out = run_script("train_step.py", "--smoke")
    assert "(a) tiny GPT-2" in out
    assert "ratio framework/bare:" in out
    assert "check: same computation" in out
    assert "GPT-2-small" not in out  # --smoke skips the big model


def test_gpu_train_smoke_runs_the_llama_path_on_cpu():
    out = run_script("gpu_train.py", "--smoke")
    assert "scaled-down Llama (smoke)" in out
    assert "bf16-mixed" in out
    assert "ratio framework/bare:" in out
    assert "check: same computation" in out


def test_step_clock_times_chunks_between_marks():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _training_common import StepClock
    finally:
        sys.path.remove(str(BENCHMARKS))
    clock = StepClock(warmup=2, steps=5, chunk=2)
    for step in range(2 + 5 + 1):
        clock.mark(step)
    assert len(clock.wall_marks) == len(clock.cpu_marks) == 4  # steps 2, 4, 6; end mark at 7
    clock.wall_marks = [0.0, 1.0, 3.0, 3.5]
    clock.cpu_marks = [0.0, 0.5, 1.0, 1.25]
    assert clock.ms_per_step() == pytest.approx([500.0, 1000.0, 500.0])
    assert clock.ms_per_step("cpu") == pytest.approx([250.0, 250.0, 250.0])
