"""Reading landing-zone files in the format and encoding the catalog declares, as Arrow batches of text.

Every value is read as text (typing is the staged layer's job), so the raw layer holds exactly what the
department sent. Problems name the feed, file, row and column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from jx_pipeline.catalog.schema import Feed
from jx_pipeline.lib.errors import JxError

BLOCK = 8 << 20  # bytes per CSV block: memory stays flat whatever the file size


def _where(feed: Feed, path: Path) -> str:
    return f"feed {feed.id} file {path}"


def header(feed: Feed, path: Path) -> list[str]:
    """The column names as the file has them."""
    fmt = feed.source.format
    try:
        if fmt == "csv":
            enc = (
                "utf-8-sig" if feed.source.encoding == "utf-8" else feed.source.encoding
            )  # tolerate a stray BOM
            with path.open(encoding=enc, newline="") as fh:
                return next(csv.reader(fh, delimiter=feed.source.delimiter), [])
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path).names
        if fmt == "xlsx":
            from openpyxl import load_workbook

            wb = load_workbook(path, read_only=True)
            row = next(wb.worksheets[0].iter_rows(max_row=1, values_only=True), ())
            wb.close()
            return [str(c) for c in row if c is not None]
        with path.open(encoding="utf-8") as fh:
            import json

            first = fh.readline()
            return list(json.loads(first)) if first.strip() else []
    except UnicodeDecodeError as exc:
        raise JxError(
            f"{_where(feed, path)} row 1: not valid {getattr(feed.source, 'encoding', 'utf-8')} "
            f"({exc.reason} at byte {exc.start})",
            fix=f"re-export the file as {getattr(feed.source, 'encoding', 'utf-8')} or correct the feed's encoding in the catalog",
        ) from None
    except Exception as exc:  # a truncated or foreign file
        raise JxError(
            f"{_where(feed, path)}: cannot read it as {fmt}: {str(exc).splitlines()[0][:200]}",
            fix="ask the department to re-send the file, or correct the feed's format in the catalog",
        ) from None


def _csv_batches(feed: Feed, path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pcsv

    src = feed.source
    read = pcsv.ReadOptions(
        encoding=src.encoding, block_size=BLOCK, use_threads=False, skip_rows=1, column_names=columns
    )
    parse = pcsv.ParseOptions(delimiter=src.delimiter, newlines_in_values=True)
    conv = pcsv.ConvertOptions(
        column_types={c: pa.string() for c in columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        yield from pcsv.open_csv(path, read_options=read, parse_options=parse, convert_options=conv)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        row, col = _locate_csv_problem(feed, path, len(columns))
        raise JxError(
            f"{_where(feed, path)} row {row}{f' column {col}' if col else ''}: "
            f"{str(exc).splitlines()[0][:200]}",
            fix="ask the department to re-send a complete, well-formed file",
        ) from None


def _locate_csv_problem(feed: Feed, path: Path, ncols: int) -> tuple[int | str, str | None]:
    """Find the first bad row with Python's csv module (slow, only after a failure)."""
    try:
        with path.open(encoding=feed.source.encoding, newline="") as fh:
            for rownum, row in enumerate(csv.reader(fh, delimiter=feed.source.delimiter), start=1):
                if len(row) != ncols:
                    return rownum, f"{len(row)} fields, header has {ncols}"
    except UnicodeDecodeError as exc:
        return "?", f"byte {exc.start} not {feed.source.encoding}"
    except csv.Error as exc:
        return "?", str(exc)
    return "?", None


def batches(feed: Feed, path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Record batches of text columns named as in the file's header (``columns``)."""
    fmt = feed.source.format
    if fmt == "csv":
        yield from _csv_batches(feed, path, columns)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=65536):
            yield pa.RecordBatch.from_arrays(
                [batch.column(c).cast(pa.string()) for c in columns], names=columns
            )
    elif fmt == "jsonl":
        import pyarrow.json as pj

        schema = pa.schema([(c, pa.string()) for c in columns])
        try:
            reader = pj.open_json(
                path,
                read_options=pj.ReadOptions(block_size=BLOCK, use_threads=False),
                parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
            yield from reader
        except pa.ArrowInvalid as exc:
            raise JxError(
                f"{_where(feed, path)}: {str(exc).splitlines()[0][:200]}",
                fix="ask the department to re-send a complete, well-formed file",
            ) from None
    else:  # xlsx: small departmental uploads
        import pandas as pd

        frame = pd.read_excel(path, dtype=str, keep_default_na=False)
        yield pa.RecordBatch.from_pandas(
            frame[columns].astype(object),
            preserve_index=False,
            schema=pa.schema([(c, pa.string()) for c in columns]),
        )


def csv_bytes(table: pa.Table) -> bytes:
    """A table as headerless CSV for COPY ... (FORMAT csv)."""
    import pyarrow.csv as pcsv

    buf = io.BytesIO()
    pcsv.write_csv(table, buf, write_options=pcsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buf.getvalue()
