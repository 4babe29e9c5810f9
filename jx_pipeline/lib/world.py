"""Where the pipeline finds its input world (generated, or real feeds laid out the same way)."""

from __future__ import annotations

import os
from pathlib import Path

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError


def world_dir() -> Path:
    return Path(os.environ.get("JX_WORLD_DIR", settings.STATE_DIR / "world"))


def world_file(relpath: str) -> Path:
    path = world_dir() / relpath
    if not path.exists():
        raise JxError(
            f"the world at {world_dir()} has no {relpath}",
            fix=f"jx-pipeline world generate --scale 0.001 --seed 7 --out {world_dir()}  (or set JX_WORLD_DIR)",
        )
    return path
