"""Data side: readers per source format, alignment, noise ceilings, bundles, synthetic data."""
