"""The run folder contract (docs/architecture.md, "Run folder"), in one place.

- ``layout``: every file and folder name of a run folder (``config.yaml``,
  ``run_manifest.json``, ``checkpoints/``, ``evaluation/`` and its result files) and the
  columns of ``probing.csv``;
- ``identity``: who a run is, ``RunIdentity(model, dataset, subject, fold, condition, seed)``;
- ``manifest``: ``run_manifest.json``, its one reader and its writer;
- ``trainer``: the run folder and the epoch as a Lightning trainer sees them (the project's
  one epoch convention), re-exported here as before this module became a package.

Everything that writes or reads a run folder (training callbacks, ``evaluate-brain``,
``probe``, ``sweep``, ``compare``) takes names from here. This package imports neither
torch nor Lightning at import time.
"""

from brainmis.run_folder.trainer import PRETRAINED_EPOCH, epochs_finished, run_folder

__all__ = ["PRETRAINED_EPOCH", "epochs_finished", "run_folder"]
