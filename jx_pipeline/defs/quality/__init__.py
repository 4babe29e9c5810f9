"""Data quality across feeds: the per-department scorecard operators read to see which feeds degrade."""
