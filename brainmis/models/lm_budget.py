"""An LM-loss budget for gradient reversal: a PI controller that sets the reversal strength.

The misaligned recipe trades brain removal against language modelling through one number,
the reversal strength lambda. ``LMBudgetController`` picks lambda during training so that the
held-out LM loss stays within ``budget`` (relative, 0.01 = 1%) of a reference loss while the
reversal is as strong as that allows.

Every update reads one LM loss ``L`` (nats per predicted token) measured on fixed held-out
windows, forms the relative excess ``x = L / reference - 1`` and the error
``e = setpoint * budget - x`` (positive: room left, so lambda rises), and sets

    integral <- clip(integral + e, 0, lambda_max / k_i)
    lambda   <- clip(k_p * e + k_i * integral - k_d * (x - x_previous), 0, lambda_max)

(a positional PID law; clipping the integral is the anti-windup: a long stretch at the
ceiling or at zero does not store error that would later overshoot). The derivative term
matters: the LM loss answers lambda late (the adapters drift for many steps, and Adam's
moments carry the drift on after lambda drops), so a rising loss must pull lambda down
before the excess itself reaches the set point. The set point sits
below the budget (``setpoint`` < 1) because the loss keeps moving between updates and the
measurement windows are not the test run: aiming at the budget itself would end half the
runs above it.

The state (reference, integral, lambda, last excess, update count) is a plain dict of floats
and ints, saved in the checkpoint so that a resumed fit continues the same trace.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from brainmis.errors import BrainmisInputError


@dataclass
class LMBudgetController:
    """PI controller of the reversal strength under an LM-loss budget (module docstring).

    Args:
        budget: allowed relative excess of the held-out LM loss over ``reference`` (> 0).
        lambda_max: ceiling of the reversal strength.
        k_p: proportional gain (lambda per unit of relative excess).
        k_i: integral gain (lambda per unit of accumulated relative excess, per update).
        k_d: derivative gain (lambda per unit change of the relative excess between updates).
        setpoint: fraction of the budget the controller aims at, in (0, 1].
        reference: the reference LM loss on the measurement windows (nats per token);
            None until ``set_reference``.
    """

    budget: float
    lambda_max: float = 0.2
    k_p: float = 2.0
    k_i: float = 0.25
    k_d: float = 50.0
    setpoint: float = 0.5
    reference: float | None = None
    integral: float = 0.0
    strength: float = 0.0
    relative_excess: float = 0.0
    updates: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.budget > 0:
            problems.append(f"model.lm_budget must be > 0 (relative, 0.01 = 1%), got {self.budget}")
        if not self.lambda_max > 0:
            problems.append(f"model.lm_budget_lambda_max must be > 0, got {self.lambda_max}")
        if self.k_p < 0 or not self.k_i > 0 or self.k_d < 0:
            problems.append(
                "model.lm_budget_kp, _ki, _kd need k_p >= 0, k_i > 0 and k_d >= 0, got "
                f"{self.k_p}, {self.k_i}, {self.k_d}"
            )
        if not 0 < self.setpoint <= 1:
            problems.append(f"model.lm_budget_setpoint must be in (0, 1], got {self.setpoint}")
        if problems:
            raise BrainmisInputError(None, "; ".join(problems))

    def set_reference(self, reference: float) -> None:
        """Fix the reference loss (nats per token, finite and > 0)."""
        if not (math.isfinite(reference) and reference > 0):
            raise BrainmisInputError(
                None, f"model.lm_reference: the reference LM loss must be > 0, got {reference}"
            )
        self.reference = float(reference)

    def update(self, lm_loss: float) -> float:
        """One controller step from a measured held-out LM loss; returns the new lambda."""
        if self.reference is None:
            raise RuntimeError("LMBudgetController.update before set_reference")
        previous = self.relative_excess if self.updates else None
        self.relative_excess = float(lm_loss) / self.reference - 1.0
        error = self.setpoint * self.budget - self.relative_excess
        self.integral = min(max(self.integral + error, 0.0), self.lambda_max / self.k_i)
        rise = 0.0 if previous is None else self.relative_excess - previous
        raw = self.k_p * error + self.k_i * self.integral - self.k_d * rise
        self.strength = float(min(max(raw, 0.0), self.lambda_max))
        self.updates += 1
        return self.strength

    def state_dict(self) -> dict[str, Any]:
        """Everything, as plain numbers (what the checkpoint stores)."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the running state (reference, integral, lambda, excess, update count)."""
        for key in ("reference", "integral", "strength", "relative_excess", "updates"):
            setattr(self, key, state[key])
