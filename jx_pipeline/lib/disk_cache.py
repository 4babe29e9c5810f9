"""Objects kept on disk under ``.jx/cache`` between runs, one file per kind, named by a key of what built them.

Best effort by design: a missing, stale or unreadable file only means building again, and a read-only state
directory only means building each time. Writes go to a temporary file first, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import pickle

from jx_pipeline.lib import settings

_UNREADABLE = (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError)


def load(kind: str, key: str):
    """The object stored for ``kind`` under ``key``, or None."""
    try:
        return pickle.loads((settings.STATE_DIR / "cache" / f"{kind}-{key}.pickle").read_bytes())
    except _UNREADABLE:
        return None


def store(kind: str, key: str, obj) -> None:
    """Keep ``obj`` as the one stored object of ``kind`` (older keys of that kind are removed)."""
    cache = settings.STATE_DIR / "cache"
    path = cache / f"{kind}-{key}.pickle"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob(f"{kind}-*.pickle"):
            old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)
    except OSError:
        pass
