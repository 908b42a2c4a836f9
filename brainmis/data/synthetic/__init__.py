"""The synthetic generator: fMRI datasets with a known ground truth, in the real layouts.

One module per idea, each depending only on the ones before it:

- ``word_categories``: the semantic lexicons the simulated brain responds to;
- ``worlds``: which property of the words drives the brain (semantic, probed, unprobed);
- ``stimulus``: the narrative (``narrative.txt``) cut into runs and timed (``StimulusRun``);
- ``hrf``: the canonical double-gamma HRF;
- ``spec``: the settings (``SyntheticSpec``, ``make_spec``) and in-memory records
  (``SyntheticBrain``, ``SyntheticSubject``) of a synthetic dataset;
- ``simulation``: word features, voxels and responses (``simulate``);
- ``textgrid_writer``, ``story_layout_writers`` (Narratives, LeBel) and ``writers``: a dataset
  on disk in the HP, Moth, NIfTI, Narratives or LeBel layout, with ``source.yaml`` and
  ``ground_truth/`` (``generate_synthetic``);
- ``cache``: generate, read and bundle once into a cache folder (``synthetic_bundle``, the
  embedded default of the demo and of the tests).

The entry points are re-exported here: ``from brainmis.data.synthetic import
generate_synthetic, synthetic_bundle``.
"""

from brainmis.data.synthetic.cache import synthetic_bundle, synthetic_cache_key
from brainmis.data.synthetic.simulation import simulate
from brainmis.data.synthetic.spec import LAYOUTS, SyntheticSpec, make_spec
from brainmis.data.synthetic.writers import generate_synthetic

__all__ = [
    "LAYOUTS",
    "SyntheticSpec",
    "generate_synthetic",
    "make_spec",
    "simulate",
    "synthetic_bundle",
    "synthetic_cache_key",
]
