"""The feed catalog: which departments send which feeds, in what format, with which columns.

``feeds.yaml`` beside this file is the one place a data engineer edits to add or change a feed;
``JX_CATALOG`` points at another file (tests use a catalog of their own).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from jx_pipeline.catalog.schema import Catalog, Feed
from jx_pipeline.lib.errors import JxError

DEFAULT_CATALOG = Path(__file__).with_name("feeds.yaml")

__all__ = ["Catalog", "Feed", "catalog_path", "load_catalog"]


def catalog_path() -> Path:
    return Path(os.environ.get("JX_CATALOG", DEFAULT_CATALOG))


def _where(doc: dict, loc: tuple) -> str:
    """'feed gaj_hjrk field source.format' for a pydantic error location."""
    if len(loc) >= 2 and loc[0] in ("feeds", "departments") and isinstance(loc[1], int):
        items = doc.get(loc[0]) or []
        item = items[loc[1]] if loc[1] < len(items) and isinstance(items[loc[1]], dict) else {}
        ident = item.get("id") or item.get("code") or f"#{loc[1] + 1}"
        rest = ".".join(str(p) for p in loc[2:] if not str(p).startswith(("file", "database")))
        return f"{loc[0][:-1]} {ident}" + (f" field {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "top level"


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> Catalog:
    try:
        # libyaml's safe loader when built in: the same document, 5x faster (every process loads the catalog)
        doc = yaml.load(
            path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
    except (OSError, yaml.YAMLError) as exc:
        raise JxError(f"feed catalog {path}: {str(exc).splitlines()[0]}", fix=f"correct {path}") from None
    if not isinstance(doc, dict):
        raise JxError(f"feed catalog {path}: not a YAML mapping", fix=f"correct {path}")
    try:
        return Catalog.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(doc, e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise JxError(
            f"feed catalog {path}: {problems}", fix=f"correct {path} (schema: jx_pipeline/catalog/schema.py)"
        ) from None


def load_catalog(path: Path | None = None) -> Catalog:
    path = Path(path or catalog_path())
    if not path.exists():
        raise JxError(
            f"feed catalog {path} does not exist", fix="unset JX_CATALOG or point it at a catalog file"
        )
    return _load(path, path.stat().st_mtime)
