"""brainmis: brain misalignment, preservation and tuning of language models."""

__version__ = "0.1.0"
