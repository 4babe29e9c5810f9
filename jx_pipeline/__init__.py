"""jx-pipeline: Jiaxing's department feeds integrated around geographic entities in a PostGIS warehouse."""

__version__ = "0.1.0"
