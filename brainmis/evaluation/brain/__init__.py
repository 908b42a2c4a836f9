"""Brain alignment: a fresh cross-validated voxelwise ridge on a model's window features.

``encoding`` (the ridge read-out and its scores), ``leakage`` (the MLP check), ``maps``
(NIfTI volumes), ``alignment`` (a model on a datamodule's fold, and the run-folder files),
``callback`` (during fit) and ``cli`` (``brainmis evaluate-brain``). The ridge solver itself
is ``brainmis.ridge``, shared with the data layer's predictive noise ceiling.
"""
