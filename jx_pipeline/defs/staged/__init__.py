"""Staged layer: typed, standardized feeds with Great Expectations checks."""
