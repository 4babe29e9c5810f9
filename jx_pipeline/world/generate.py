"""``jx-pipeline world generate``: build the world, write every feed as its catalog entry says, and the truth.

Output folder layout (a manifest lists every file written, with its SHA-256):

    DIR/manifest.json                         seed, scale, days, catalog and noise used; files written
    DIR/entities/admin_units.parquet          GeoParquet, EPSG:4490: 1 city, 7 counties, 72 towns, 1,202 villages
    DIR/entities/geo_entities.parquet         GeoParquet, EPSG:4490: natural entities, roads, buildings, door plates
    DIR/landing/<dept>/<feed>/<YYYY-MM-DD>/   landing-zone files, one folder per landing day
    DIR/sources/<dept>/<table>.parquet        content of source-database tables (also loaded into PostgreSQL)
    DIR/truth/records.parquet, entities.parquet   ground truth: never read by the pipeline
    DIR/truth/resends.parquet                 re-sent records: the value first delivered and the corrected one
    DIR/truth/residents.parquet, organisations.parquet   each person's home and organisation's seat (door plate,
                                              village): the true counts per village the marts are scored on
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from jx_pipeline.catalog import Catalog, Feed, catalog_path, load_catalog
from jx_pipeline.catalog.schema import DatabaseSource
from jx_pipeline.lib.errors import JxError
from jx_pipeline.world import deliveries, entities, people, records, subjects, writers
from jx_pipeline.world.model import WorldModel, build_model
from jx_pipeline.world.places import AdminUnits, admin_units
from jx_pipeline.world.rng import stream

MANIFEST = "manifest.json"
TRUTH_PARTS = "truth/.parts"
# truth of corrected re-sends: per re-sent record, the wrong value first delivered and the corrected one
RESENDS = "truth/resends.parquet"
RESENDS_COLUMNS = ["feed_id", "landing_date", "file", "record_key", "column", "delivered", "corrected"]
RESENDS_SCHEMA = pa.schema([(c, pa.string()) for c in RESENDS_COLUMNS])
NOISE_DEFAULTS = Path(__file__).with_name("noise.yaml")
_MODEL: WorldModel | None = None  # shared with forked workers


@dataclass(frozen=True)
class Options:
    out: Path
    scale: float
    seed: int
    days: int = 0
    start: str = "2026-11-01"
    noise_file: Path | None = None
    workers: int = 2
    progress: bool = True


def load_noise(path: Path | None) -> dict:
    noise = yaml.safe_load(NOISE_DEFAULTS.read_text(encoding="utf-8"))
    if path is None:
        return noise
    try:
        override = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise JxError(f"noise file {path}: {str(exc).splitlines()[0]}", fix=f"correct {path}") from None
    for group, values in override.items():
        if group not in noise or not isinstance(values, dict):
            raise JxError(
                f"noise file {path}: unknown group {group!r}", fix=f"use the groups of {NOISE_DEFAULTS}"
            )
        for key, value in values.items():
            if key not in noise[group]:
                raise JxError(f"noise file {path}: unknown kind {group}.{key}", fix=f"see {NOISE_DEFAULTS}")
            if not isinstance(value, int | float) or value < 0 or (key != "coord_jitter_m" and value > 1):
                raise JxError(
                    f"noise file {path}: {group}.{key} = {value!r} is not a rate between 0 and 1",
                    fix=f"correct {path}",
                )
            noise[group][key] = float(value)
    return noise


def validate(opts: Options) -> None:
    if not (0 < opts.scale <= 10):
        raise JxError(
            f"--scale {opts.scale} is out of range: use a number above 0 and at most 10 (1.0 = the whole city)",
            fix="jx-pipeline world generate --scale 0.01 ...",
        )
    if opts.seed < 0 or opts.seed >= 2**63:
        raise JxError(
            f"--seed {opts.seed} is out of range: use a whole number from 0 to 2**63-1",
            fix="jx-pipeline world generate --seed 7 ...",
        )
    if not (0 <= opts.days <= 366):
        raise JxError(
            f"--days {opts.days} is out of range: use 0 to 366", fix="jx-pipeline world generate --days 3 ..."
        )
    try:
        pd.Timestamp(opts.start)
    except ValueError:
        raise JxError(
            f"--start-date {opts.start!r} is not a date", fix="use YYYY-MM-DD, e.g. --start-date 2026-11-01"
        ) from None


def prepare_out(out: Path) -> None:
    """Refuse a folder holding files the generator did not write; remove only files a previous run wrote."""
    if out.exists() and not out.is_dir():
        raise JxError(f"{out} exists and is not a folder", fix="choose another --out")
    present = sorted(p for p in out.rglob("*") if p.is_file()) if out.exists() else []
    if not present:
        return
    manifest = out / MANIFEST
    if not manifest.exists():
        raise JxError(
            f"{out} already holds files the generator did not write (e.g. {present[0].relative_to(out)})",
            fix=f"choose an empty or new folder for --out (nothing in {out} was changed)",
        )
    listed = set(json.loads(manifest.read_text(encoding="utf-8"))["files"]) | {MANIFEST}
    foreign = [p for p in present if str(p.relative_to(out)) not in listed]
    if foreign:
        raise JxError(
            f"{out} holds files the generator did not write (e.g. {foreign[0].relative_to(out)})",
            fix=f"move them out of {out}, or choose another --out (nothing was changed)",
        )
    for p in present:
        p.unlink()
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def feed_count(feed: Feed, scale: float) -> int:
    return people.scale_count(feed.records, scale)


def _write_feed(args) -> tuple[str, list[str], list[dict]]:
    feed, out, noise, seed, scale, start, days = args
    start_ts = pd.Timestamp(start)
    result = records.feed_records(feed, _MODEL, noise, seed, feed_count(feed, scale), start_ts, days)
    written, resends = [], []
    if isinstance(feed.source, DatabaseSource):
        written.append(_write_source_table(feed, result, out, seed, start_ts))
    else:
        ext = feed.source.format
        source_name = {canon: src for src, canon in feed.columns.items()}
        for day, frame in sorted(result.days.items()):
            landing = start_ts + pd.Timedelta(days=day)
            folder = out / "landing" / feed.department / feed.id / f"{landing:%Y-%m-%d}"
            files, corrections = deliveries.plan(feed.id, day, frame, seed, noise["deliveries"])
            for delivery in files:  # one file, or a split extract, then a corrected re-send
                path = folder / f"{feed.id}_{landing:%Y%m%d}{delivery.suffix}.{ext}"
                part = delivery.frame
                extra = {"change_type": part["change_type"]} if feed.change_column else None
                writers.write_feed_file(feed, writers.to_source(feed, part, extra), path)
                written.append(str(path.relative_to(out)))
            resends += [
                {
                    "feed_id": feed.id,
                    "landing_date": f"{landing:%Y-%m-%d}",
                    "file": path.name,  # the re-send is the day's last file
                    "record_key": c.record_key,
                    "column": source_name[c.column],
                    "delivered": writers.text_value(c.delivered, c.column),
                    "corrected": writers.text_value(c.corrected, c.column),
                }
                for c in corrections
            ]
    # the truth goes to a part file, not back to the parent: 9M truth rows in one process would not fit 4 GB
    writers.write_parquet(result.truth, out / TRUTH_PARTS / f"{feed.id}.parquet", schema=records.TRUTH_SCHEMA)
    return feed.id, written, resends


def _write_source_table(
    feed: Feed, result: records.FeedOutput, out: Path, seed: int, start: pd.Timestamp
) -> str:
    """The final state of a source-database table: latest version per key, watermark, deleted flag."""
    rng = stream(seed, "feed", feed.id, "watermark")
    frames = []
    for day, frame in sorted(result.days.items()):
        f = frame.copy()
        secs = pd.to_timedelta(rng.integers(0, 86400, len(f)), unit="s")
        if day == 0:  # the initial content was written over the years before the first landing day
            when = (
                start.normalize()
                - pd.Timedelta(days=1)
                - pd.to_timedelta(rng.integers(0, 1000, len(f)), unit="D")
            )
        else:
            when = pd.DatetimeIndex([start.normalize() + pd.Timedelta(days=day)] * len(f))
        f["updated_at"] = (when + secs).strftime("%Y-%m-%d %H:%M:%S")
        f["deleted"] = np.where(f["change_type"] == "D", "1", "0")
        frames.append(f)
    table = pd.concat(frames, ignore_index=True).drop_duplicates("record_key", keep="last")
    source = writers.to_source(feed, table, {"updated_at": table["updated_at"], "deleted": table["deleted"]})
    path = out / "sources" / feed.department / f"{feed.source.table}.parquet"
    writers.write_parquet(source, path)
    return str(path.relative_to(out))


def generate(opts: Options, catalog: Catalog | None = None, log=print) -> dict:
    """Write the world into ``opts.out``; returns the manifest."""
    global _MODEL
    validate(opts)
    catalog = catalog or load_catalog()
    noise = load_noise(opts.noise_file)
    out = opts.out
    prepare_out(out)
    out.mkdir(parents=True, exist_ok=True)
    log(f"building the world (scale {opts.scale}, seed {opts.seed}) ...")
    admin: AdminUnits = admin_units(opts.seed)
    pop, natural, _cells = people.build(opts.seed, opts.scale, admin)
    _MODEL = build_model(admin, pop, natural)
    files = entities.write(out, admin, pop, natural) + subjects.write(out, pop)
    log(
        f"  {len(pop.persons):,} residents, {len(pop.orgs):,} organisations, {len(natural):,} natural entities, "
        f"{len(pop.address_points):,} door plates"
    )

    tasks = [(f, out, noise, opts.seed, opts.scale, opts.start, opts.days) for f in catalog.feeds]
    feed_files: dict[str, list[str]] = {}
    resends: list[dict] = []
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="feeds", unit="feed", disable=not opts.progress)
    if opts.workers > 1:
        with ProcessPoolExecutor(opts.workers, mp_context=mp.get_context("fork")) as pool:
            for feed_id, written, resent in pool.map(_write_feed, tasks):
                feed_files[feed_id] = written
                resends += resent
                bar.update()
    else:
        for task in tasks:
            feed_id, written, resent = _write_feed(task)
            feed_files[feed_id] = written
            resends += resent
            bar.update()
    bar.close()
    _MODEL = None

    n_records = writers.concat_parquet(
        [out / TRUTH_PARTS / f"{f.id}.parquet" for f in catalog.feeds], out / "truth" / "records.parquet"
    )
    (out / TRUTH_PARTS).rmdir()
    writers.write_parquet(
        pd.DataFrame(resends, columns=RESENDS_COLUMNS), out / RESENDS, schema=RESENDS_SCHEMA
    )
    files += ["truth/records.parquet", RESENDS] + [p for f in catalog.feeds for p in feed_files[f.id]]
    files = sorted(files)
    manifest = {
        "generator": "jx-pipeline world generate",
        "format": 1,
        "seed": opts.seed,
        "scale": opts.scale,
        "days": opts.days,
        "start_date": opts.start,
        "catalog": str(catalog_path().name),
        "catalog_sha256": _sha256(catalog_path()) if catalog_path().exists() else None,
        "noise": noise,
        "counts": {
            "residents": len(pop.persons),
            "households": len(pop.households),
            "organisations": len(pop.orgs),
            "natural_entities": len(natural),
            "address_points": len(pop.address_points),
            "buildings": len(pop.buildings),
            "roads": len(pop.roads),
            "records": n_records,
            "feeds": len(catalog.feeds),
        },
        "files": {p: _sha256(out / p) for p in files},
    }
    (out / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def _settings(opts: Options, catalog_sha: str | None, noise: dict) -> dict:
    return {
        "seed": opts.seed,
        "scale": opts.scale,
        "days": opts.days,
        "start_date": opts.start,
        "catalog_sha256": catalog_sha,
        "noise": noise,
    }


def up_to_date(opts: Options) -> bool:
    """True when ``opts.out`` holds a complete world made with these settings (every file's hash verified)."""
    manifest_path = opts.out / MANIFEST
    if not manifest_path.exists():
        return False
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    want = _settings(opts, _sha256(catalog_path()), load_noise(opts.noise_file))
    if any(manifest.get(k) != v for k, v in want.items()):
        return False
    return all((opts.out / p).exists() and _sha256(opts.out / p) == h for p, h in manifest["files"].items())
