"""Builders and plumbing shared by every domain under ``defs/``."""
