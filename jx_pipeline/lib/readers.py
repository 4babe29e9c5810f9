"""Reading landing-zone files in the format and encoding the catalog declares, as Arrow batches of text.

Every value is read as text (typing is the staged layer's job), so the raw layer holds exactly what the
department sent: a Parquet column of another type is written as its text (nested values as JSON), an Excel
number as its digits. Problems name the feed, file, row (or line) and column, and what to do.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
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
        if fmt == "csv":  # the first line only: a later line in another encoding is named by its number
            enc = "utf-8-sig" if feed.source.encoding == "utf-8" else feed.source.encoding  # a stray BOM
            with path.open("rb") as fh:  # up to \n, \r\n or a lone \r (old Mac files), at most 1 MB
                first = fh.readline(1 << 20).split(b"\r", 1)[0].rstrip(b"\n")
            try:
                text = first.decode(enc)
            except UnicodeDecodeError:
                raise encoding_error(feed, path, 1, first) from None
            return next(csv.reader([text], delimiter=feed.source.delimiter), [])
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path).names
        if fmt == "xlsx":
            from openpyxl import load_workbook

            wb = load_workbook(path, read_only=True)
            row = list(next(wb.worksheets[0].iter_rows(max_row=1, values_only=True), ()))
            wb.close()
            while row and row[-1] is None:
                row.pop()
            return ["" if c is None else str(c) for c in row]  # a blank cell inside stays, as an empty name
        with path.open(encoding="utf-8") as fh:
            import json

            first = fh.readline()
            return list(json.loads(first)) if first.strip() else []
    except UnicodeDecodeError as exc:  # a JSON lines file
        raise JxError(
            f"{_where(feed, path)} line 1: not valid utf-8 ({exc.reason} at byte {exc.start})",
            fix="re-export the file as utf-8",
        ) from None
    except JxError:
        raise
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
    if src.encoding in ("gbk", "gb18030"):
        guard = Utf8InGbk(feed, path)
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(BLOCK), b""):
                guard.feed_bytes(chunk)
        guard.close()
    try:
        yield from pcsv.open_csv(path, read_options=read, parse_options=parse, convert_options=conv)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        row, col = _locate_csv_problem(feed, path, len(columns))
        raise JxError(
            f"{_where(feed, path)} row {row}: {f'{col}; ' if col else ''}{str(exc).splitlines()[0][:200]}",
            fix="ask the department to re-send a complete, well-formed file",
        ) from None


def _locate_csv_problem(feed: Feed, path: Path, ncols: int) -> tuple[int | str, str | None]:
    """Find the first bad row with Python's csv module (slow, only after a failure)."""
    bad = first_undecodable_line(path, feed.source.encoding)
    if bad:
        raise encoding_error(feed, path, *bad)
    try:
        with path.open(encoding=feed.source.encoding, newline="") as fh:
            for rownum, row in enumerate(csv.reader(fh, delimiter=feed.source.delimiter), start=1):
                if len(row) != ncols:
                    return rownum, f"{len(row)} fields, header has {ncols}"
    except csv.Error as exc:
        return "?", str(exc)
    return "?", None


# When a file is not in its declared encoding, what it most likely is instead (named in the message).
OTHER_ENCODING = {"utf-8": "gb18030", "utf-8-sig": "gb18030", "gbk": "utf-8", "gb18030": "utf-8"}


def first_undecodable_line(path: Path, encoding: str) -> tuple[int, bytes] | None:
    """The first line (1-based) whose bytes are not valid ``encoding``, with those bytes; None if all are."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8-sig" if number == 1 and encoding == "utf-8" else encoding)
            except UnicodeDecodeError:
                return number, line
    return None


def encoding_error(feed: Feed, path: Path, line: int, raw: bytes, found: str | None = None) -> JxError:
    """A line not in the feed's encoding; ``found``: the encoding it was recognized in (else a guess)."""
    enc = feed.source.encoding
    guess = found or OTHER_ENCODING[enc]
    try:
        shown = f" (it reads as {guess}: {raw.decode(guess).strip()[:60]!r})"
    except UnicodeDecodeError:
        shown = ""
    what = f"{found} text, not {enc}" if found else f"not valid {enc}"
    return JxError(
        f"{_where(feed, path)} line {line}: {what}{shown}; the file changes encoding part-way",
        fix=f"ask the department to re-export the whole file in one encoding ({enc}), then re-run the partition;"
        " the partition's previous load is kept until then",
    )


class Utf8InGbk:
    """Watches a GBK/GB18030 file's bytes as they stream to COPY for lines that are UTF-8 text instead:
    UTF-8 Chinese often decodes as GBK without an error, into the wrong characters. Checking every line costs
    as much as the load, so the first whole line of every 64 KB and the last line are checked exactly; a
    shorter UTF-8 stretch inside the file is caught when GBK decoding fails on it (then located line by line)."""

    STEP = 64 << 10

    def __init__(self, feed: Feed, path: Path):
        self.feed, self.path = feed, path
        self.lines = 0  # newlines before the current chunk
        self.partial = b""  # the bytes after the last newline so far
        self.last: tuple[bytes, int] = (b"", 0)  # the last whole line so far and its number

    def _check(self, line: bytes, number: int) -> None:
        if line.isascii():
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return
        if sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff") >= 3:  # not a chance pairing of GBK bytes
            raise encoding_error(self.feed, self.path, number, line, "utf-8")

    def feed_bytes(self, chunk: bytes) -> None:
        for start in range(0, len(chunk), self.STEP):
            a = chunk.find(b"\n", start) + 1
            b = chunk.find(b"\n", a)
            if a and b > 0:
                self._check(chunk[a:b], self.lines + chunk.count(b"\n", 0, a) + 1)
        end = chunk.rfind(b"\n")
        if end >= 0:
            prev = chunk.rfind(b"\n", 0, end)
            line = chunk[prev + 1 : end] if prev >= 0 else self.partial + chunk[:end]
            self.last = (line, self.lines + chunk.count(b"\n", 0, end) + 1)
            self.partial = chunk[end + 1 :]
        else:
            self.partial += chunk
        self.lines += chunk.count(b"\n")

    def close(self) -> None:
        """Checks the last line (the end of a file is where a differently encoded part is appended)."""
        self._check(*((self.partial.rstrip(b"\r"), self.lines + 1) if self.partial.strip() else self.last))


def batches(feed: Feed, path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Record batches of text columns named as in the file's header (``columns``)."""
    fmt = feed.source.format
    if fmt == "csv":
        yield from _csv_batches(feed, path, columns)
    elif fmt == "parquet":
        yield from _parquet_batches(feed, path, columns)
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
    else:
        yield from _xlsx_batches(feed, path, columns)


def _batch(rows: list[list[str]], columns: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(col, pa.string()) for col in zip(*rows, strict=True)], columns
    )


def _xlsx_batches(feed: Feed, path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The first sheet's rows under its header (``columns``, by position), streamed; wholly empty rows (Excel's
    formatted blank rows) are not records."""
    from openpyxl import load_workbook

    width, row, chunk = len(columns), 1, []
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        for row, cells in enumerate(wb.worksheets[0].iter_rows(min_row=2, values_only=True), start=2):
            if all(c is None or c == "" for c in cells):
                continue
            beyond = [i for i, c in enumerate(cells[width:], start=width + 1) if c not in (None, "")]
            if beyond:
                raise JxError(
                    f"{_where(feed, path)} row {row}: a value in column {beyond[0]}, beyond the header's {width}",
                    fix="ask the department to re-send the sheet with a header cell over every column",
                )
            chunk.append([_excel_text(c) for c in (*cells, *[None] * width)[:width]])
            if len(chunk) == 65536:
                yield _batch(chunk, columns)
                chunk = []
    except JxError:
        raise
    except Exception as exc:  # a damaged sheet found part-way
        raise JxError(
            f"{_where(feed, path)} row {row}: cannot read it as xlsx: {str(exc).splitlines()[0][:200]}",
            fix="ask the department to re-send a complete, well-formed file",
        ) from None
    finally:
        wb.close()
    if chunk:
        yield _batch(chunk, columns)


def _excel_text(value) -> str:
    """A cell as the text a person sees: whole numbers without '.0' (an ID typed as a number), dates as ISO."""
    if isinstance(value, float):
        if value != value:  # NaN: an empty cell
            return ""
        if value.is_integer() and abs(value) < 1e21:  # the digits Excel shows, not the binary's (…009984)
            return str(int(decimal.Decimal(repr(value))))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ").removesuffix(" 00:00:00")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return "" if value is None else str(value)


def _text_column(feed: Feed, path: Path, name: str, col: pa.Array, first_row: int) -> pa.Array:
    """A Parquet column of any type as text: scalars by Arrow's cast, binary as UTF-8, nested values as JSON."""
    t = col.type
    if pa.types.is_nested(t):
        return pa.array(
            [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in col.to_pylist()],
            pa.string(),
        )
    try:
        return col.cast(pa.string())
    except pa.ArrowInvalid:  # binary that is not UTF-8 text
        for i, v in enumerate(col.to_pylist()):
            try:
                v is None or v.decode("utf-8")
            except (UnicodeDecodeError, AttributeError):
                raise JxError(
                    f"{_where(feed, path)} row {first_row + i} column {name}: {t} value {v[:40]!r} is not text",
                    fix="ask the department to send this column as text (a string column), or drop it from the"
                    " feed's columns in the catalog",
                ) from None
        raise


def _parquet_batches(feed: Feed, path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    row = 2  # rows are numbered as in a CSV file with its header: the first record is row 2
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65536, columns=columns):
            yield pa.RecordBatch.from_arrays(
                [_text_column(feed, path, c, batch.column(c), row) for c in columns], names=columns
            )
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise JxError(
            f"{_where(feed, path)} row {row}: cannot read it as parquet: {str(exc).splitlines()[0][:200]}",
            fix="ask the department to re-send a complete, well-formed file",
        ) from None


def csv_bytes(table: pa.Table) -> bytes:
    """A table as headerless CSV for COPY ... (FORMAT csv)."""
    import pyarrow.csv as pcsv

    buf = io.BytesIO()
    pcsv.write_csv(table, buf, write_options=pcsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buf.getvalue()
