"""The parser with a gazetteer, kept on disk between runs of ``jx-pipeline address parse``.

Building it parses every door plate of the gazetteer twice (once for its roads, once for its plates): most of
the command's start-up. The built state (the plates, roads and the heads already read) is stored under
``.jx/cache``, keyed by a hash of the gazetteer file, the division index and the parser's code, and loaded next
time; the division index itself is shared with ``address_index.load``, not stored twice.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable
from pathlib import Path

from jx_pipeline.lib import address_index, disk_cache
from jx_pipeline.lib.address import DEFAULT_CITY, AddressParser

# attributes that are the index's own objects: taken from the loaded index, never stored
_SHARED = ("ix", "county_name", "town_name", "village_name", "village_short")


def code_key(city: str):
    """A sha256 of what a parser's output depends on besides its gazetteer: the division index, the city and
    the parser's code (linking adds the warehouse's gazetteer to it for its parse cache)."""
    h = hashlib.sha256(address_index.stored_key(address_index.default_folder()).encode() + city.encode())
    for path in sorted(Path(__file__).parent.glob("address*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h


def _key(gazetteer: Path, city: str) -> str:
    h = code_key(city)
    h.update(gazetteer.name.encode() + b"\0" + gazetteer.read_bytes())
    return h.hexdigest()[:20]


def gazetteer_parser(gazetteer: Path, points: Callable[[], list], city: str = DEFAULT_CITY) -> AddressParser:
    """``AddressParser(points=points(), city=city)``, from the disk cache when the gazetteer and code match."""
    return keyed_parser("address_parser", _key(gazetteer, city), points, city)


def keyed_parser(kind: str, key: str, points: Callable[[], list], city: str = DEFAULT_CITY) -> AddressParser:
    """``AddressParser(points=points(), city=city)``, from the disk cache's ``kind`` when it was stored under
    ``key`` (which must cover the gazetteer, the city and the code: ``code_key`` and more)."""
    ix = address_index.load(None)
    enabled = gc.isenabled()
    gc.disable()  # many small objects that all live on
    try:
        state = disk_cache.load(kind, key)
    finally:
        if enabled:
            gc.enable()
    if isinstance(state, dict):
        parser = object.__new__(AddressParser)
        parser.__dict__.update({k: getattr(ix, k) if k != "ix" else ix for k in _SHARED} | state)
        return parser
    parser = AddressParser(points=points(), city=city)
    disk_cache.store(kind, key, {k: v for k, v in parser.__dict__.items() if k not in _SHARED})
    return parser
