"""Ingestion of the 168 department feeds into ``raw``: built from the feed catalog, one step per department."""
