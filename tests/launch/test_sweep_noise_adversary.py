"""A sweep matrix over the demo configs takes the ``noise_adversary`` condition."""

from __future__ import annotations

from pathlib import Path

import yaml

from brainmis.launch.sweep_matrix import load_matrix

REPO = Path(__file__).resolve().parents[2]


def test_demo_sweep_with_noise_adversary_plans_its_runs(tmp_path: Path) -> None:
    demo = yaml.safe_load((REPO / "configs" / "sweeps" / "demo.yaml").read_text())
    demo["config"] = str(REPO / "configs" / "demo" / "{condition}.yaml")
    demo["conditions"] = [*demo["conditions"], "noise_adversary"]
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(demo))
    matrix = load_matrix(path)
    matrix.check_configs_exist()
    runs = [run for run in matrix.runs() if run.identity.condition == "noise_adversary"]
    assert sorted(run.identity.subject for run in runs) == ["F", "H"]
    for run in runs:
        assert run.base_config == REPO / "configs" / "demo" / "noise_adversary.yaml"
        assert run.overrides["model.condition"] == "noise_adversary"
