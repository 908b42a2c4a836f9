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


def test_demo_erasure_sweep_plans_erased_and_inlp_runs() -> None:
    """The shipped preset: preserving, erased and inlp for both synthetic subjects, each
    condition from its own demo config."""
    matrix = load_matrix(REPO / "configs" / "sweeps" / "demo_erasure.yaml")
    matrix.check_configs_exist()
    planned = sorted((run.identity.condition, run.identity.subject) for run in matrix.runs())
    assert planned == [(c, s) for c in ("erased", "inlp", "preserving") for s in ("F", "H")]
    for run in matrix.runs():
        condition = run.identity.condition
        assert run.base_config == REPO / "configs" / "demo" / f"{condition}.yaml"
        assert run.overrides["model.condition"] == condition
