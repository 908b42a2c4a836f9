"""Per-voxel values written back into the subject's volume as NIfTI images."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from brainmis.data.records import Subject


def can_map(subject: Subject) -> bool:
    """Whether the subject knows where its voxels sit (coordinates and volume shape)."""
    return subject.voxel_coords is not None and subject.volume_shape is not None


def values_to_volume(
    values: np.ndarray,
    subject: Subject,
    voxel_indices: np.ndarray | None = None,
    fill: float = np.nan,
) -> nib.Nifti1Image:
    """A 3-D NIfTI image holding ``values`` at their voxels' coordinates.

    Args:
        values: ``(n,)`` one value per voxel (e.g. per-voxel r of the selected voxels).
        subject: gives ``voxel_coords (V, 3)`` (i, j, k) indices, ``volume_shape (X, Y, Z)``
            and optionally ``affine (4, 4)`` (identity when missing).
        voxel_indices: ``(n,)`` indices of those voxels among the subject's ``V`` voxels
            (default: all of them, in order).
        fill: value of every other position of the volume.

    Returns:
        float32 image of shape ``volume_shape``.
    """
    if not can_map(subject):
        raise ValueError(f"subject {subject.name} has no voxel coordinates or volume shape")
    values = np.asarray(values, dtype=np.float32)
    coords = np.asarray(subject.voxel_coords, dtype=np.int64)
    if voxel_indices is not None:
        coords = coords[np.asarray(voxel_indices, dtype=np.int64)]
    if values.shape != (len(coords),):
        raise ValueError(f"{values.shape[0]} values for {len(coords)} voxels")
    shape = tuple(int(size) for size in subject.volume_shape)
    if coords.size and ((coords < 0).any() or (coords >= np.array(shape)).any()):
        raise ValueError(f"voxel coordinates fall outside the volume {shape}")
    volume = np.full(shape, fill, dtype=np.float32)
    volume[coords[:, 0], coords[:, 1], coords[:, 2]] = values
    affine = np.eye(4) if subject.affine is None else np.asarray(subject.affine, dtype=np.float64)
    return nib.Nifti1Image(volume, affine)


def save_brain_map(
    values: np.ndarray,
    subject: Subject,
    path: str | Path,
    voxel_indices: np.ndarray | None = None,
) -> Path | None:
    """Write ``values`` as ``path`` (``.nii.gz``) when the subject can be mapped; return the
    path, or None (nothing written) when it has no voxel coordinates."""
    if not can_map(subject):
        return None
    path = Path(path)
    nib.save(values_to_volume(values, subject, voxel_indices), path)
    return path
