"""Writing feeds the way departments deliver them: CSV (UTF-8, BOM, GBK, GB18030), JSON lines, Excel, Parquet.

Every writer is byte-deterministic (no timestamps in files or archive entries), so the same seed and scale
give byte-identical worlds.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jx_pipeline.catalog.schema import Feed
from jx_pipeline.world.render import DATE_VARIANTS

DATE_FIELDS = ("birth_date", "reg_date", "event_date")
FIXED_TIME = datetime(2026, 1, 1)


def _fmt_dates(values: pd.Series, fmt: str, variant: np.ndarray) -> pd.Series:
    parsed = pd.to_datetime(values, format="%Y%m%d", errors="coerce")
    out = parsed.dt.strftime(fmt).astype(object)
    for k, vfmt in enumerate(DATE_VARIANTS):
        sel = variant == k
        if sel.any():
            out[sel] = parsed[sel].dt.strftime(vfmt)
    return out.where(parsed.notna(), None)


NUMERIC_FIELDS = ("amount", "reg_capital", "lon", "lat")


def _text(values: pd.Series, numeric: bool) -> pd.Series:
    """Values as text: numbers without trailing zeros, None kept as null."""
    if not numeric:
        return values.astype(object).where(values.notna(), None)
    num = pd.to_numeric(values, errors="coerce")
    text = [f"{v:.6f}".rstrip("0").rstrip(".") for v in num.fillna(0).to_numpy(dtype=float)]
    return pd.Series(text, index=values.index, dtype=object).where(num.notna(), None)


def text_value(value: object, canon: str) -> str | None:
    """One canonical value as the files write it."""
    return _text(pd.Series([value], dtype=object), canon in NUMERIC_FIELDS).iloc[0]


def to_source(feed: Feed, frame: pd.DataFrame, extra: dict[str, pd.Series] | None = None) -> pd.DataFrame:
    """Canonical frame -> the feed's own column names and formats, every value text (or null)."""
    variant = frame["_date_variant"].to_numpy() if "_date_variant" in frame else np.full(len(frame), -1)
    cols = {}
    for src, canon in feed.columns.items():
        if extra and canon in extra:
            cols[src] = extra[canon]
        elif canon in DATE_FIELDS and canon in frame:
            cols[src] = _fmt_dates(frame[canon], feed.date_format, variant)
        elif canon in frame:
            cols[src] = _text(frame[canon], canon in NUMERIC_FIELDS)
        else:
            cols[src] = pd.Series([None] * len(frame), dtype=object)
    return pd.DataFrame({k: pd.Series(v).reset_index(drop=True).astype(object) for k, v in cols.items()})


def _normalize_zip(path: Path) -> None:
    """Rewrite an .xlsx with fixed timestamps (openpyxl stamps the save time in entries and core.xml)."""
    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    fixed = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    entries = [
        (
            n,
            re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + fixed, d)
            if n == "docProps/core.xml"
            else d,
        )
        for n, d in entries
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data)
    path.write_bytes(buf.getvalue())


def write_xlsx(frame: pd.DataFrame, path: Path, sheet: str) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    wb.properties.creator = "jx-pipeline world"
    wb.properties.created = wb.properties.modified = FIXED_TIME
    ws = wb.create_sheet(sheet[:31])
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False, name=None):
        ws.append(list(row))
    wb.save(path)
    _normalize_zip(path)


def write_feed_file(feed: Feed, frame: pd.DataFrame, path: Path) -> None:
    src = feed.source
    path.parent.mkdir(parents=True, exist_ok=True)
    if src.format == "csv":
        crlf = src.encoding in ("gbk", "gb18030")  # Windows desktop exports
        frame.to_csv(
            path,
            index=False,
            encoding=src.encoding,
            sep=src.delimiter,
            lineterminator="\r\n" if crlf else "\n",
        )
    elif src.format == "jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for rec in frame.to_dict(orient="records"):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    elif src.format == "parquet":
        table = pa.Table.from_pandas(
            frame, preserve_index=False, schema=pa.schema([(c, pa.string()) for c in frame.columns])
        )
        pq.write_table(table, path, compression="zstd")
    elif src.format == "xlsx":
        write_xlsx(frame, path, feed.id)
    else:  # pragma: no cover - the catalog schema allows no other format
        raise ValueError(src.format)


def write_parquet(
    frame: pd.DataFrame,
    path: Path,
    metadata: dict[bytes, bytes] | None = None,
    schema: pa.Schema | None = None,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False, schema=schema)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    pq.write_table(table, path, compression="zstd")


def concat_parquet(parts: list[Path], path: Path) -> int:
    """Stream part files (same schema) into one Parquet file in the given order, deleting each part; returns rows."""
    rows, writer = 0, None
    try:
        for part in parts:
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
            rows += table.num_rows
            part.unlink()
    finally:
        if writer is not None:
            writer.close()
    return rows
