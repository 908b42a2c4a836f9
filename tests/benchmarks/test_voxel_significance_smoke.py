"""``benchmarks/voxel_significance.py`` runs end to end at tiny sizes, so it cannot rot.

The script exits non-zero when our permutation test and its plain loop give different p, so
this checks that too. No timing is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "voxel_significance.py"


def test_voxel_significance_benchmark_smoke():
    tiny = ["--n-trs", "160", "--n-features", "20", "--n-voxels", "200", "--repeats", "1"]
    completed = subprocess.run(
        [sys.executable, str(BENCHMARK), *tiny, "--permutations", "40", "--block-trs", "4"],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    out = completed.stdout
    assert "ours: voxel_significance" in out and "plain loop" in out
    assert "goal significance < ridge:" in out
    assert "check: same p as the plain loop" in out
