"""The synthetic cache: generate, read and bundle a synthetic dataset once per identity.

``synthetic_bundle`` is the embedded default of the demo and of the tests. It adds the noise
ceiling exactly as ``brainmis prepare`` does: the predictive inter-subject ceiling
(``brainmis.data.dataset_ceiling``) for layouts without repeats and with 2+ subjects (HP,
NIfTI), while Moth keeps its repeats (the Schoppe ceiling). ``synthetic_cache_key`` names the
cache folder after everything the data depend on (arguments, text, generator version,
ceiling method), so a changed generator never re-uses a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict
from pathlib import Path

from brainmis.data.bundle import write_bundle
from brainmis.data.dataset_ceiling import add_predictive_ceilings
from brainmis.data.noise_ceiling import DEFAULT_CEILING_COMPONENTS, predictive_ceiling_method
from brainmis.data.readers import read_source
from brainmis.data.synthetic.spec import GENERATOR_VERSION, make_spec
from brainmis.data.synthetic.stimulus import default_text_path
from brainmis.data.synthetic.writers import generate_synthetic
from brainmis.errors import BrainmisInputError


def synthetic_cache_key(layout: str, n_subjects: int, seed: int, **sizes) -> str:
    """Folder name identifying a synthetic dataset: its arguments, the text and the generator."""
    spec = make_spec(**sizes)
    text_path = Path(spec.text_path) if spec.text_path else default_text_path()
    text_digest = (
        hashlib.sha256(text_path.read_bytes()).hexdigest() if text_path.is_file() else "missing"
    )
    identity = {
        "layout": layout,
        "n_subjects": n_subjects,
        "seed": seed,
        "spec": asdict(spec),
        "text_sha256": text_digest,
        "generator_version": GENERATOR_VERSION,
        "bundle_ceiling": predictive_ceiling_method(DEFAULT_CEILING_COMPONENTS),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return f"{layout}-s{n_subjects}-seed{seed}-{digest}"


def synthetic_bundle(
    cache_dir: str | Path,
    layout: str = "hp",
    n_subjects: int = 2,
    seed: int = 0,
    **sizes,
) -> Path:
    """Generate, read and bundle a synthetic dataset once; return the bundle folder.

    Layout of the cache: ``<cache_dir>/<key>/source`` (the dataset in its real layout, ground
    truth included) and ``<cache_dir>/<key>/bundle`` (``brainmis.data.bundle.write_bundle``),
    with ``key = synthetic_cache_key(...)``. Subjects without a ceiling (no file, no repeats)
    get the predictive inter-subject ceiling when there are 2+ subjects, as in ``brainmis
    prepare`` (``brainmis.data.dataset_ceiling.add_predictive_ceilings``). Both are built in
    a temporary folder that is renamed to ``<key>`` only when complete, so an interrupted run
    never leaves a half cache; a later call finds the complete folder and re-uses it.
    """
    cache_dir = Path(cache_dir)
    final = cache_dir / synthetic_cache_key(layout, n_subjects, seed, **sizes)
    bundle = final / "bundle"
    if final.exists():
        if not (bundle / "manifest.json").is_file():
            raise BrainmisInputError(
                final, "synthetic cache folder is incomplete; delete it and retry"
            )
        return bundle
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        generate_synthetic(layout, staging / "source", n_subjects=n_subjects, seed=seed, **sizes)
        dataset = read_source(staging / "source")
        add_predictive_ceilings(dataset)
        write_bundle(dataset, staging / "bundle")
        try:
            os.rename(staging, final)
        except OSError:
            if not (bundle / "manifest.json").is_file():  # not a concurrent builder's result
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return bundle
