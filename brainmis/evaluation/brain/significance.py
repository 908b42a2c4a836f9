"""Per-voxel significance of the held-out r: a block permutation test and Benjamini-Hochberg.

The null hypothesis of a voxel is that its predicted time series on the test run carries no
information about its measured one. The test keeps the measured responses in place and
shuffles whole blocks of ``block_trs`` consecutive TRs of the *predicted* series within the
test run (the last, shorter block is a block too), which keeps most of the predictions'
autocorrelation. Every voxel gets the same block orders, so the test is one computation over
all voxels. The one-sided p of a voxel is ``(1 + #{r_perm >= r_obs}) / (1 + n_permutations)``.
With several outer folds each fold is tested on its own and the folds' p are merged by
Simes' rule (:func:`permutation_p_values` says why not the average r). Benjamini-Hochberg
turns the p of all voxels into q-values, and a voxel is significant when ``q <= fdr_q``.

How it stays cheap. Predictions ``P`` and responses ``Y`` (``(n, V)``) are z-scored once over
the test run, so a permuted r is ``sum_t P[s(t)] Y[t] / n``. With ``k`` full blocks of ``L``
TRs and a rest of ``m = n - k L`` TRs, a full block that lands before the rest covers one of
the ``k`` slots ``[j L, j L + L)``, one that lands after it one of the slots
``[m + j L, m + j L + L)``, and the rest one of the ``k + 1`` windows ``[p L, p L + m)``. The
dot products of every block with every slot it can land in (``2 k^2 + k + 1`` values per
voxel, about 1,800 for a 300-TR run in blocks of 10) are computed once; a permuted r is then
the sum of ``k + 1`` of them, one ``embedding_bag`` gather-sum for a batch of permutations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from brainmis.errors import BrainmisInputError

DEFAULT_PERMUTATIONS = 1000
DEFAULT_BLOCK_TRS = 10
DEFAULT_FDR_Q = 0.05

TIE_TOLERANCE = 1e-5
"""A permuted r within this of the observed one counts as reaching it (float32 sums of the
same products can differ in the last bits; counting near-ties keeps p conservative)."""

_CPU_CHUNK_FLOATS = 2**22  # temporaries of a voxel chunk on CPU (16 MiB)
_DEVICE_CHUNK_FLOATS = 2**27  # on a GPU
_PERMUTATION_BATCH = 1024

CLI_OPTION_NAMES = {
    "permutations": "--permutations",
    "block_trs": "--permutation-block",
    "fdr_q": "--fdr-q",
}


@dataclass(frozen=True)
class PermutationTestOptions:
    """Settings of the permutation test.

    Attributes:
        permutations: block orders drawn (at least 1).
        block_trs: TRs per block (at least 1; 1 shuffles single TRs).
        fdr_q: false discovery rate of the Benjamini-Hochberg threshold, in (0, 1).
        seed: seed of the generator that draws the block orders.
    """

    permutations: int = DEFAULT_PERMUTATIONS
    block_trs: int = DEFAULT_BLOCK_TRS
    fdr_q: float = DEFAULT_FDR_Q
    seed: int = 0


def permutation_test_options(
    permutations: int,
    block_trs: int,
    fdr_q: float,
    seed: int = 0,
    names: Mapping[str, str] = CLI_OPTION_NAMES,
) -> PermutationTestOptions | None:
    """Checked options, or None when ``permutations`` is 0 (the test is off).

    ``names`` maps ``permutations``, ``block_trs``, ``fdr_q`` to the option names the user
    typed (the CLI's by default), which the one-line ``BrainmisInputError`` quotes.
    """
    if isinstance(permutations, bool) or int(permutations) != permutations or permutations < 0:
        raise BrainmisInputError(
            None, f"{names['permutations']} {permutations}: must be 0 (off) or a positive count"
        )
    if isinstance(block_trs, bool) or int(block_trs) != block_trs or block_trs < 1:
        raise BrainmisInputError(
            None, f"{names['block_trs']} {block_trs}: must be a positive number of TRs"
        )
    if not (np.isfinite(fdr_q) and 0 < fdr_q < 1):
        raise BrainmisInputError(
            None, f"{names['fdr_q']} {fdr_q}: must be a false discovery rate between 0 and 1"
        )
    if permutations == 0:
        return None
    return PermutationTestOptions(int(permutations), int(block_trs), float(fdr_q), int(seed))


@dataclass
class VoxelSignificance:
    """Result of the permutation test over the evaluated voxels.

    Attributes:
        p: ``(V,)`` float64 one-sided permutation p per voxel, in ``[1 / (1 + n), 1]``.
        q: ``(V,)`` float64 Benjamini-Hochberg adjusted p (q-value) per voxel.
        options: the settings used.
        per_roi: ROI name -> ``{"n_voxels", "n_significant", "share_significant"}``.
    """

    p: np.ndarray
    q: np.ndarray
    options: PermutationTestOptions
    per_roi: dict[str, dict] = field(default_factory=dict)

    @property
    def significant(self) -> np.ndarray:
        """``(V,)`` bool: ``q <= fdr_q``."""
        return self.q <= self.options.fdr_q

    @property
    def n_significant(self) -> int:
        return int(self.significant.sum())

    @property
    def share_significant(self) -> float | None:
        """Share of the voxels that are significant (None without voxels)."""
        return None if self.p.size == 0 else self.n_significant / self.p.size

    def to_json(self) -> dict:
        """The ``significance`` record of ``brain_alignment.json``."""
        return {
            "test": "block permutation of the held-out predictions, one-sided",
            "permutations": self.options.permutations,
            "block_trs": self.options.block_trs,
            "fdr_q": self.options.fdr_q,
            "seed": self.options.seed,
            "smallest_possible_p": 1.0 / (1 + self.options.permutations),
            "n_voxels": int(self.p.size),
            "n_significant": self.n_significant,
            "share_significant": self.share_significant,
            "per_roi": {name: dict(counts) for name, counts in self.per_roi.items()},
        }


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) ``(V,)`` float64 of ``p_values (V,)``.

    ``q_(i) = min over j >= i of p_(j) V / j`` for the p sorted ascending, capped at 1; the
    voxels with ``q <= alpha`` are the ones the step-up procedure rejects at FDR ``alpha``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p-values must be a 1-D array of numbers in [0, 1]")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty_like(p)
    q[order] = np.minimum(adjusted, 1.0)
    return q


def block_orders(
    n_trs: int, block_trs: int, permutations: int, generator: np.random.Generator
) -> np.ndarray:
    """``(permutations, n_blocks)`` int64 random orders of the blocks of a run of ``n_trs``.

    Blocks ``0 .. k-1`` are the full blocks of ``block_trs`` TRs in time order; block ``k``,
    when ``n_trs`` is not a multiple, is the shorter last one. Raises ``BrainmisInputError``
    when the run holds fewer than 2 blocks (nothing to permute).
    """
    n_blocks = -(-n_trs // block_trs)
    if n_blocks < 2:
        raise BrainmisInputError(
            None,
            f"permutation block of {block_trs} TRs: the test run has only {n_trs} TRs, fewer "
            "than 2 blocks to permute; choose a shorter block (--permutation-block)",
        )
    identity = np.tile(np.arange(n_blocks, dtype=np.int64), (permutations, 1))
    return generator.permuted(identity, axis=1)


def permuted_indices(order: np.ndarray, n_trs: int, block_trs: int) -> np.ndarray:
    """``(n_trs,)`` TR indices of the series with its blocks in ``order`` (the series at
    position t is the original one at ``index[t]``)."""
    starts = np.asarray(order) * block_trs
    return np.concatenate([np.arange(s, min(s + block_trs, n_trs)) for s in starts])


class _BlockLayout:
    """Bag indices of block orders into the table of block-slot dot products of one run.

    Table rows: ``i * k + j`` (full block i in slot j, before the rest), ``k^2 + i * k + j``
    (after the rest), ``2 k^2 + p`` (the rest after p full blocks).
    """

    def __init__(self, n_trs: int, block_trs: int):
        self.n_trs, self.block = n_trs, block_trs
        self.full, self.rest = divmod(n_trs, block_trs)
        k = self.full
        self.n_rows = k * k if self.rest == 0 else 2 * k * k + k + 1

    def bags(self, orders: np.ndarray) -> torch.Tensor:
        """``(n_orders, k [+ 1])`` int64 table rows whose sum is each order's ``n * r``."""
        orders = np.asarray(orders, dtype=np.int64)
        k = self.full
        slots = np.arange(k)
        if self.rest == 0:
            return torch.from_numpy(orders * k + slots)
        rest_at = np.argmax(orders == k, axis=1)  # full blocks placed before the rest
        full_order = orders[orders != k].reshape(len(orders), k)
        after = slots[None, :] >= rest_at[:, None]
        rows = full_order * k + slots + np.where(after, k * k, 0)
        return torch.from_numpy(np.concatenate([rows, 2 * k * k + rest_at[:, None]], axis=1))

    def table(self, P: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """``(n_rows, b)`` dot products of predicted blocks with response slots, from
        z-scored ``P`` and ``Y`` ``(n_trs, b)``."""
        k, L, m = self.full, self.block, self.rest
        blocks = P[: k * L].reshape(k, L, -1)
        parts = [_block_slot_products(blocks, Y[: k * L].reshape(k, L, -1))]
        if m:
            parts.append(_block_slot_products(blocks, Y[m : m + k * L].reshape(k, L, -1)))
            windows = (torch.arange(k + 1, device=Y.device) * L)[:, None] + torch.arange(
                m, device=Y.device
            )
            parts.append((Y[windows] * P[k * L :][None]).sum(1))  # (k + 1, b)
        return torch.cat(parts)


def _block_slot_products(blocks: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """``(k * k, b)``: row ``i * k + j`` is the dot product over the ``L`` TRs of block i of
    ``blocks`` with slot j of ``slots`` (both ``(k, L, b)``), per voxel. One multiply-add
    of ``(k, k, b)`` per TR of a block (about 3x faster on CPU than a batched matrix product
    of ``b`` tiny ``(k, L) @ (L, k)`` matrices)."""
    k, L, width = blocks.shape
    products = blocks.new_zeros(k, k, width)
    for t in range(L):
        products.addcmul_(blocks[:, t, None, :], slots[None, :, t, :])
    return products.reshape(k * k, width)


def _zscore_over_time(values: torch.Tensor) -> torch.Tensor:
    """Columns of ``(n, b)`` centred and scaled to unit mean square (float32); constant
    columns become 0."""
    values = values.double()
    centred = values - values.mean(0)
    scale = centred.square().mean(0).sqrt()
    return torch.where(scale > 0, centred / scale.clamp(min=1e-300), 0.0).float()


def fold_p_values(
    predictions: torch.Tensor,
    responses: torch.Tensor,
    orders: np.ndarray,
    block_trs: int,
) -> np.ndarray:
    """One-sided block-permutation p ``(V,)`` float64 of the held-out r of one fold.

    Args:
        predictions, responses: ``(n_test, V)`` on one device, the test run's TRs in time
            order.
        orders: ``(n_permutations, n_blocks)`` block orders (:func:`block_orders`), the same
            for every voxel.
        block_trs: TRs per block.

    Voxels go through in chunks that keep the temporaries within 16 MiB on CPU (512 MiB on
    a GPU); permutations in batches of up to 1,024.
    """
    device = predictions.device
    layout = _BlockLayout(int(predictions.shape[0]), block_trs)
    bags = layout.bags(orders).to(device)
    identity = layout.bags(np.arange(orders.shape[1])[None]).to(device)
    n_permutations, n_voxels = len(orders), int(predictions.shape[1])
    batch = min(_PERMUTATION_BATCH, n_permutations)
    floats = layout.n_rows + 3 * layout.n_trs + 2 * batch
    budget = _CPU_CHUNK_FLOATS if device.type == "cpu" else _DEVICE_CHUNK_FLOATS
    width = max(1, min(n_voxels, budget // floats))
    exceed = torch.zeros(n_voxels, dtype=torch.int64, device=device)
    for start in range(0, n_voxels, width):
        cols = slice(start, start + width)
        P = _zscore_over_time(predictions[:, cols])
        table = layout.table(P, _zscore_over_time(responses[:, cols]))
        observed = F.embedding_bag(identity, table, mode="sum")[0]
        for first in range(0, n_permutations, batch):
            permuted = F.embedding_bag(bags[first : first + batch], table, mode="sum")
            exceed[cols] += (permuted >= observed - TIE_TOLERANCE * layout.n_trs).sum(0)
    return (1.0 + exceed.cpu().double().numpy()) / (1.0 + n_permutations)


def simes_combination(p_values: np.ndarray) -> np.ndarray:
    """Simes' combination ``(V,)`` of ``(K, V)`` p-values of K tests of each voxel:
    ``min over i of K p_(i) / i`` over the sorted p of the voxel, capped at 1 (the p itself
    for K = 1). Valid when the K statistics are positively dependent."""
    p = np.sort(np.asarray(p_values, dtype=np.float64), axis=0)
    ranks = np.arange(1, p.shape[0] + 1)[:, None]
    return np.minimum((p.shape[0] * p / ranks).min(axis=0), 1.0)


def permutation_p_values(
    folds: Sequence[tuple[torch.Tensor, torch.Tensor]],
    options: PermutationTestOptions,
) -> np.ndarray:
    """One-sided block-permutation p ``(V,)`` float64 of the held-out r over outer folds.

    Args:
        folds: per outer fold ``(predictions, responses)``, both ``(n_test, V)`` on one
            device (the test run's TRs in time order); the voxels are the same in every fold.
        options: permutations, block length, seed.

    Each fold is tested on its own (:func:`fold_p_values`) with block orders drawn from
    ``np.random.default_rng(options.seed)``, fold after fold; with several folds their p
    are merged by :func:`simes_combination`. Not the permutation null of the fold-averaged
    r: the folds' r share training data (fold f's ridge is fitted on fold g's test run and
    the other way round), so under the null they are positively correlated, which
    shuffling each test run on its own removes; with 4 leave-one-run-out folds that null is
    too narrow by about sqrt(2) and 11-12% of pure-noise voxels came out at p <= 0.05.
    """
    generator = np.random.default_rng(options.seed)
    per_fold = []
    for predictions, responses in folds:
        orders = block_orders(
            int(predictions.shape[0]), options.block_trs, options.permutations, generator
        )
        per_fold.append(fold_p_values(predictions, responses, orders, options.block_trs))
    return simes_combination(np.stack(per_fold))


def voxel_significance(
    folds: Sequence[tuple[torch.Tensor, torch.Tensor]],
    options: PermutationTestOptions,
    roi_masks: Mapping[str, np.ndarray] | None = None,
) -> VoxelSignificance:
    """Permutation p (:func:`permutation_p_values`), BH q-values over all ``V`` voxels and
    the significant counts per ROI (``roi_masks``: name -> ``(V,)`` bool; one BH over all
    voxels, counted within each ROI)."""
    p = permutation_p_values(folds, options)
    q = benjamini_hochberg(p)
    significant = q <= options.fdr_q
    per_roi = {}
    for name, mask in (roi_masks or {}).items():
        mask = np.asarray(mask, dtype=bool)
        count = int(significant[mask].sum())
        share = None if not mask.any() else count / int(mask.sum())
        per_roi[name] = {
            "n_voxels": int(mask.sum()),
            "n_significant": count,
            "share_significant": share,
        }
    return VoxelSignificance(p=p, q=q, options=options, per_roi=per_roi)
