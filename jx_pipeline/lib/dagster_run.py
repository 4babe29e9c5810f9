"""``dagster asset materialize`` behind ``jx-pipeline materialize``, with the catalog's pool limits written first.

The limits (lib/pools.py) must be in Dagster's storage before the run's steps claim slots. Writing them from the
``jx-pipeline`` process meant importing Dagster and opening the instance there too, ~1.2 s before the run's own
process started doing the same; here one interpreter does both, and the parent only follows the run.

    python -m jx_pipeline.lib.dagster_run asset materialize -m jx_pipeline.definitions --select ...
"""

from __future__ import annotations

import os
import sys

from jx_pipeline.lib.errors import JxError


def _log(msg: str) -> None:
    print(f"jx-pipeline: {msg}", flush=True)


# the exit code of a failure before any run was created (its error already printed): the parent adds nothing
BEFORE_RUN = 3


def main(argv: list[str]) -> int:
    from jx_pipeline.lib import pools

    try:
        changed = pools.sync_from_env(_log)
    except JxError as exc:
        if os.environ.get("JX_DEBUG") == "1":
            raise
        print(exc.render(), file=sys.stderr)
        return BEFORE_RUN
    if changed:
        _log(f"Dagster pool limits set from the catalog: {changed}")
    from dagster._cli import main as dagster_main

    sys.argv = ["dagster", *argv]
    try:
        dagster_main()
    except SystemExit as done:  # click ends every command this way
        if isinstance(done.code, int) or done.code is None:
            return done.code or 0
        print(done.code, file=sys.stderr)  # sys.exit("message"), as the interpreter would
        return 1
    return 0


def exit_now(code: int) -> None:
    """End the process once its work is done and its output flushed, without the interpreter's teardown of
    every module Dagster imported (~0.7 s per process, paid twice by every ``jx-pipeline materialize``). Only
    after the work: the run's events are already in storage, and its connections close with the process. The
    exit handlers still run (logging's, multiprocessing's: the forkserver's socket directory)."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
