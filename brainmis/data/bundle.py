"""The canonical bundle: one prepared folder that training and evaluation read.

Layout (``<k>`` a two-digit index, names made file-safe)::

    manifest.json                      format + version, dataset name and TR, subjects (with
                                       their noise_ceiling_method), runs, shapes, ROI names,
                                       and the sha256 + size of every file
    stamps.json                        size and mtime of every file when written (not part
                                       of the checksum; lets a load skip re-hashing)
    subjects/<k>-<subject>/
        roi_masks.npy                  (n_roi, V) bool, rows in the manifest's roi_names order
        noise_ceiling.npy              (V,) float32                      [optional]
        voxel_coords.npy               (V, 3) int64 voxel indices        [optional]
        runs/<k>-<run>/
            responses.npy              (n_kept, V) float32
            tr_times.npy               (n_TR,) float64 seconds
            kept_trs.npy               (n_kept,) int64
            words.tsv                  columns word, onset (seconds)
            repeats.npy                (n_repeats, n_kept, V) float32    [optional]

``affine`` and ``volume_shape`` live in the manifest. Arrays are plain ``.npy`` files, so
loading memory-maps them.

Verification on load (``verify=``):

- ``True`` (default, cheap): every listed file is present with its recorded size and ``.npy``
  header (shape, dtype); every file is sha256-hashed unless it is at least
  ``ALWAYS_HASH_BELOW_BYTES`` and its size and mtime still equal the stamp taken when it was
  written, so a file changed in place is caught, while an untouched bundle loads in well under
  a second whatever its size. A copied bundle (new mtimes) is hashed in full on every load.
- ``"full"``: sha256 of every file (``brainmis prepare --verify``).
- ``False``: structure only (shapes and dtypes).

``bundle_checksum`` is the sha256 of ``manifest.json``, which holds every file's sha256: the
identity of the bundle's content, recorded by run manifests.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from brainmis.data.readers.checks import check_dataset
from brainmis.data.records import BrainDataset, Run, Subject
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir
from brainmis.structured_files import read_mapping

BUNDLE_FORMAT = "brainmis-bundle"
BUNDLE_VERSION = 1
MANIFEST_NAME = "manifest.json"
STAMPS_NAME = "stamps.json"
ALWAYS_HASH_BELOW_BYTES = 1 << 20
"""Files smaller than this are always hashed on load (cheap); larger ones when their stamp
(size, mtime) changed since writing."""
HASH_CHUNK_BYTES = 1 << 23
WORDS_COLUMNS = ("word", "onset")

Verify = bool | Literal["full"]


# --- writing ---------------------------------------------------------------------------------


class HashingWriter:
    """A binary file that hashes (sha256) and counts everything written to it."""

    def __init__(self, handle: BinaryIO):
        self.handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.size += view.nbytes
        return self.handle.write(view)


def safe_name(index: int, name: str) -> str:
    """``<index>-<name>`` with characters other than letters, digits, ``_.-`` replaced."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:40] or "x"
    return f"{index:02d}-{cleaned}"


class BundleWriter:
    """Writes the files of one bundle under a folder, recording each file's entry."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files: dict[str, dict[str, Any]] = {}

    def array(self, relative: str, array: np.ndarray, dtype: np.dtype | type) -> None:
        array = np.asarray(array)
        if array.dtype != np.dtype(dtype) or not array.flags.c_contiguous:
            array = np.ascontiguousarray(array, dtype=dtype)
        entry = self.write(
            relative, lambda out: np.lib.format.write_array(out, array, allow_pickle=False)
        )
        entry.update(shape=list(array.shape), dtype=array.dtype.str)

    def words(self, relative: str, words: np.ndarray, onsets: np.ndarray) -> None:
        text = io.StringIO()
        table = csv.writer(text, delimiter="\t", lineterminator="\n")
        table.writerow(WORDS_COLUMNS)
        for word, onset in zip(words, onsets, strict=True):
            table.writerow((str(word), repr(float(onset))))
        data = text.getvalue().encode("utf-8")
        self.write(relative, lambda out: out.write(data))

    def write(self, relative: str, fill: Any) -> dict[str, Any]:
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            out = HashingWriter(handle)
            fill(out)
        entry = {"sha256": out.digest.hexdigest(), "bytes": out.size}
        self.files[relative] = entry
        return entry


def write_bundle(dataset: BrainDataset, out_dir: str | Path) -> Path:
    """Write ``dataset`` as a bundle folder ``out_dir``; return its path.

    ``out_dir`` must not exist or be empty. Files go to a temporary sibling folder renamed to
    ``out_dir`` at the end, so a failure leaves nothing behind.
    """
    out_dir = refuse_non_empty_dir(out_dir).absolute()
    check_dataset(dataset, out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    temporary.chmod(0o755)  # mkdtemp makes it private; a bundle is shared data
    try:
        writer = BundleWriter(temporary)
        subjects = [
            write_subject(writer, index, subject)
            for index, subject in enumerate(dataset.subjects.values())
        ]
        manifest = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "dataset": {"name": dataset.name, "tr": float(dataset.tr)},
            "subjects": subjects,
            "files": writer.files,
        }
        (temporary / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
        stamps = {relative: file_stamp(temporary / relative) for relative in writer.files}
        (temporary / STAMPS_NAME).write_text(json.dumps(stamps) + "\n")
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        temporary.rename(out_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return out_dir


def write_subject(writer: BundleWriter, index: int, subject: Subject) -> dict[str, Any]:
    folder = f"subjects/{safe_name(index, subject.name)}"
    roi_names = list(subject.roi_masks)
    if roi_names:
        masks = np.stack([np.asarray(subject.roi_masks[name], dtype=bool) for name in roi_names])
        writer.array(f"{folder}/roi_masks.npy", masks, np.bool_)
    if subject.noise_ceiling is not None:
        writer.array(f"{folder}/noise_ceiling.npy", subject.noise_ceiling, np.float32)
    if subject.voxel_coords is not None:
        writer.array(f"{folder}/voxel_coords.npy", subject.voxel_coords, np.int64)
    runs = []
    for run_index, run in enumerate(subject.runs):
        run_folder = f"{folder}/runs/{safe_name(run_index, run.name)}"
        writer.array(f"{run_folder}/responses.npy", run.responses, np.float32)
        writer.array(f"{run_folder}/tr_times.npy", run.tr_times, np.float64)
        writer.array(f"{run_folder}/kept_trs.npy", run.kept_trs, np.int64)
        writer.words(f"{run_folder}/words.tsv", run.words, run.word_onsets)
        if run.repeats is not None:
            writer.array(f"{run_folder}/repeats.npy", run.repeats, np.float32)
        runs.append(
            {
                "name": run.name,
                "folder": run_folder,
                "n_trs": len(run.tr_times),
                "n_kept": int(run.responses.shape[0]),
                "n_words": len(run.words),
                "n_repeats": 0 if run.repeats is None else int(run.repeats.shape[0]),
            }
        )
    return {
        "name": subject.name,
        "folder": folder,
        "n_voxels": subject.n_voxels,
        "roi_names": roi_names,
        "has_noise_ceiling": subject.noise_ceiling is not None,
        "noise_ceiling_method": subject.noise_ceiling_method
        if subject.noise_ceiling is not None
        else None,
        "has_voxel_coords": subject.voxel_coords is not None,
        "volume_shape": None if subject.volume_shape is None else list(subject.volume_shape),
        "affine": None if subject.affine is None else np.asarray(subject.affine).tolist(),
        "runs": runs,
    }


def file_stamp(path: Path) -> list[int]:
    """``[size in bytes, mtime in ns]``."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


# --- verification ----------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (hashlib releases the GIL, so threads help)."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def bundle_folder(path: str | Path) -> Path:
    """The bundle folder for ``path`` (the folder or its manifest.json)."""
    path = Path(path)
    folder = path.parent if path.name == MANIFEST_NAME and path.is_file() else path
    if not (folder / MANIFEST_NAME).is_file():
        raise BrainmisInputError(
            folder,
            f"not a brainmis bundle (no {MANIFEST_NAME}); make one from a source with "
            "`brainmis prepare SOURCE --out DIR`",
        )
    return folder


def bundle_checksum(path: str | Path) -> str:
    """sha256 (hex) of the bundle's ``manifest.json``: the identity of its whole content."""
    return sha256_of(bundle_folder(path) / MANIFEST_NAME)


def read_bundle_manifest(folder: Path) -> dict[str, Any]:
    """The checked ``manifest.json`` of a bundle folder: format, version and required keys."""
    path = folder / MANIFEST_NAME
    manifest = read_mapping(path, "bundle manifest")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BrainmisInputError(path, f"not a {BUNDLE_FORMAT} manifest")
    if manifest.get("version") != BUNDLE_VERSION:
        raise BrainmisInputError(
            path,
            f"bundle version {manifest.get('version')!r}; this brainmis reads {BUNDLE_VERSION}",
        )
    for key in ("dataset", "subjects", "files"):
        if key not in manifest:
            raise BrainmisInputError(path, f"manifest lacks {key!r}")
    return manifest


def read_stamps(folder: Path) -> dict[str, list[int]]:
    try:
        stamps = json.loads((folder / STAMPS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def verify_bundle(folder: Path, manifest: dict[str, Any], verify: Verify) -> None:
    """Check every listed file's size and, as ``verify`` says, its sha256 (module docstring)."""
    if verify is False:
        return
    stamps = read_stamps(folder) if verify is True else {}
    to_hash: list[tuple[Path, str]] = []
    for relative, entry in manifest["files"].items():
        path = folder / relative
        if not path.is_file():
            raise BrainmisInputError(path, "missing file listed in the bundle manifest")
        stamp = file_stamp(path)
        if stamp[0] != entry["bytes"]:
            raise BrainmisInputError(
                path,
                f"size {stamp[0]} bytes differs from the manifest's {entry['bytes']}: "
                "the bundle was modified or truncated; prepare it again",
            )
        unchanged = stamps.get(relative) == stamp and stamp[0] >= ALWAYS_HASH_BELOW_BYTES
        if not unchanged:
            to_hash.append((path, entry["sha256"]))
    workers = max(1, min(8, os.cpu_count() or 1, len(to_hash)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = list(pool.map(sha256_of, [path for path, _ in to_hash]))
    for (path, expected), digest in zip(to_hash, digests, strict=True):
        if digest != expected:
            raise BrainmisInputError(
                path,
                "checksum mismatch (sha256 differs from manifest.json): the bundle was "
                "modified or corrupted; prepare it again",
            )


# --- loading ---------------------------------------------------------------------------------


def load_bundle(path: str | Path, verify: Verify = True, mmap: bool = True) -> BrainDataset:
    """Load a bundle as a ``BrainDataset``.

    Args:
        path: the bundle folder (or its manifest.json).
        verify: ``True`` (cheap check), ``"full"`` (sha256 of every file) or ``False``; see
            the module docstring.
        mmap: memory-map responses and repeats read-only instead of reading them.
    """
    folder = bundle_folder(path)
    manifest = read_bundle_manifest(folder)
    verify_bundle(folder, manifest, verify)
    loader = ArrayLoader(folder, manifest["files"], mmap)
    try:
        subjects = {entry["name"]: load_subject(loader, entry) for entry in manifest["subjects"]}
        dataset = manifest["dataset"]
        result = BrainDataset(name=str(dataset["name"]), tr=float(dataset["tr"]), subjects=subjects)
    except (KeyError, TypeError) as error:
        raise BrainmisInputError(
            folder / MANIFEST_NAME, f"malformed bundle manifest: {error!r}"
        ) from None
    check_dataset(result, folder)
    return result


class ArrayLoader:
    """Loads the bundle's files, checking each ``.npy`` header against the manifest."""

    def __init__(self, folder: Path, files: dict[str, dict[str, Any]], mmap: bool):
        self.folder, self.files, self.mmap = folder, files, mmap

    def entry(self, relative: str) -> dict[str, Any]:
        if relative not in self.files:
            raise BrainmisInputError(
                self.folder / MANIFEST_NAME, f"manifest does not list {relative}"
            )
        return self.files[relative]

    def array(self, relative: str, large: bool = False) -> np.ndarray:
        entry = self.entry(relative)
        path = self.folder / relative
        try:
            array = np.load(
                path, allow_pickle=False, mmap_mode="r" if large and self.mmap else None
            )
        except (ValueError, OSError, EOFError) as error:
            raise BrainmisInputError(path, f"not a readable .npy file: {error}") from None
        if list(array.shape) != entry["shape"] or array.dtype.str != entry["dtype"]:
            raise BrainmisInputError(
                path,
                f"holds {array.dtype.str} {list(array.shape)}, the manifest says "
                f"{entry['dtype']} {entry['shape']}",
            )
        return array

    def words(self, relative: str) -> tuple[np.ndarray, np.ndarray]:
        self.entry(relative)
        path = self.folder / relative
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle, delimiter="\t"))
            if not rows or tuple(rows[0]) != WORDS_COLUMNS:
                raise ValueError(f"header must be {WORDS_COLUMNS}")
            words = [row[0] for row in rows[1:]]
            onsets = [float(row[1]) for row in rows[1:]]
        except (OSError, ValueError, IndexError, UnicodeDecodeError) as error:
            raise BrainmisInputError(path, f"not a readable words table: {error}") from None
        return np.array(words, dtype=str), np.array(onsets, dtype=np.float64)


def load_subject(loader: ArrayLoader, entry: dict[str, Any]) -> Subject:
    folder = entry["folder"]
    roi_names = list(entry["roi_names"])
    roi_masks: dict[str, np.ndarray] = {}
    if roi_names:
        masks = loader.array(f"{folder}/roi_masks.npy")
        roi_masks = {name: masks[i] for i, name in enumerate(roi_names)}
    runs = []
    for run in entry["runs"]:
        run_folder = run["folder"]
        words, onsets = loader.words(f"{run_folder}/words.tsv")
        runs.append(
            Run(
                name=run["name"],
                tr_times=loader.array(f"{run_folder}/tr_times.npy"),
                responses=loader.array(f"{run_folder}/responses.npy", large=True),
                kept_trs=loader.array(f"{run_folder}/kept_trs.npy"),
                words=words,
                word_onsets=onsets,
                repeats=loader.array(f"{run_folder}/repeats.npy", large=True)
                if run["n_repeats"]
                else None,
            )
        )
    affine = entry.get("affine")
    volume_shape = entry.get("volume_shape")
    return Subject(
        name=entry["name"],
        runs=runs,
        roi_masks=roi_masks,
        noise_ceiling=loader.array(f"{folder}/noise_ceiling.npy")
        if entry["has_noise_ceiling"]
        else None,
        voxel_coords=loader.array(f"{folder}/voxel_coords.npy")
        if entry["has_voxel_coords"]
        else None,
        volume_shape=None if volume_shape is None else tuple(int(n) for n in volume_shape),
        affine=None if affine is None else np.array(affine, dtype=np.float64),
        noise_ceiling_method=entry.get("noise_ceiling_method"),  # absent in older bundles
    )
