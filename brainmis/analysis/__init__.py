"""Comparison of conditions across finished runs (``brainmis compare``).

``runs`` finds run folders and their identity, ``results`` reads their evaluation files,
``matrix`` checks them against the expected experiment matrix, ``statistics`` holds the
tests, ``probing_stats`` the probing aggregation, ``comparison`` computes every table,
``curves`` reads TensorBoard scalars, ``tables``/``figures``/``report`` write the outputs and
``compare`` is the command. See docs/comparison.md.
"""
