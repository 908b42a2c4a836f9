"""Holmes-compatible probing.

- ``holmes_reader``: Holmes on-disk datasets -> ``ProbingTask`` (every task type).
- ``builtin``: the offline suite, generated into the same on-disk format.
- ``representations``: pooled hidden states of sentences, tokens, spans and pairs (cached).
- ``probe``: the Holmes probe protocol, all tasks x seeds trained as one batched computation.
- ``metrics``, ``runner``: scores and controls; ``results_file``: ``evaluation/probing.csv``.
- ``callback`` (``ProbingCallback``) and ``cli`` (``brainmis probe``).
"""
