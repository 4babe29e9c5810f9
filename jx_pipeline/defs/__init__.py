"""Dagster definitions per domain; ``jx_pipeline.definitions`` assembles them."""
