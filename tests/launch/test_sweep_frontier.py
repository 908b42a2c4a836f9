"""The removal-frontier preset (configs/sweeps/demo_frontier.yaml): one setting, a preserving
control and a named condition per reversal recipe, so that compare keeps them apart."""

from pathlib import Path

from brainmis.launch.sweep_matrix import load_matrix

REPO = Path(__file__).resolve().parents[2]


def test_frontier_preset_sweeps_five_lambdas_and_three_budgets() -> None:
    matrix = load_matrix(REPO / "configs" / "sweeps" / "demo_frontier.yaml")
    runs = matrix.runs()
    assert len(runs) == 9 * 2 and {run.identity.subject for run in runs} == {"F", "H"}
    assert {run.identity.model for run in runs} == {"tiny"}  # one setting
    recipes = {}
    for run in runs:
        overrides = run.overrides
        recipes[run.identity.condition] = (
            overrides["model.condition"],
            overrides.get("model.grl_lambda"),
            overrides.get("model.lm_budget"),
        )
        assert run.base_config == (REPO / "configs" / "demo" / "misaligned.yaml").resolve()
    assert recipes.pop("preserving") == ("preserving", None, None)
    lambdas = sorted(v[1] for v in recipes.values() if v[1] is not None)
    budgets = sorted(v[2] for v in recipes.values() if v[2] is not None)
    assert lambdas == [0.01, 0.02, 0.05, 0.1, 0.2] and budgets == [0.01, 0.02, 0.05]
    assert {v[0] for v in recipes.values()} == {"misaligned"}
