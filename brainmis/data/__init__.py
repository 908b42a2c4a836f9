"""Data side, in three rooms.

- ``brainmis.data.readers``: reading a source (one module per layout, the source manifest,
  the layouts' file names, TextGrid) into a ``BrainDataset``;
- ``brainmis.data.synthetic``: the generator of datasets with a known ground truth;
- this package's root: the path from a dataset to a batch (``records``, ``bundle``,
  ``alignment``, ``splits``, ``window_tokens``, ``target_shuffle``, ``noise_ceiling``,
  ``dataset_ceiling``, ``voxel_selection``, ``datamodule``).
"""
