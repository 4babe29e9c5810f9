"""The headless browser that checks the Dagster UI: Debian's chromium, with the CJK fonts Chinese names need.

Playwright's own browser download comes from a host these machines cannot reach, so Playwright drives the
system's chromium (``executable_path``). Without fonts-noto-cjk, department and feed names render as boxes.
"""

from __future__ import annotations

import shutil

from jx_pipeline.lib import localpg
from jx_pipeline.lib.errors import JxError

PACKAGES = ["chromium", "fonts-noto-cjk"]
# headless on a server: no GPU, no sandbox as root, nothing fetched from the internet at start
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure(install: bool = True, log=print) -> list[str]:
    """Install chromium and fonts-noto-cjk when missing (apt-get); return what was installed."""
    return localpg.ensure_packages(
        PACKAGES, install=install, log=log, why="the browser test of the Dagster UI"
    )


def executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise JxError("chromium is not installed", fix="jx-pipeline browser   (or: make test, which runs it)")
    return path
