"""The synthetic world: deterministic, valid identities, truth that matches the feeds, every format readable."""

import io
import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from stdnum import numdb
from stdnum.cn import ric, uscc

from jx_pipeline.catalog import load_catalog
from jx_pipeline.catalog.schema import DatabaseSource
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pg import connect
from jx_pipeline.world import deliveries, elsewhere, generate, ids, people, places, render
from jx_pipeline.world.sourcedb import load as load_sources
from jx_pipeline_tests.conftest import WORLD_DAYS as DAYS
from jx_pipeline_tests.conftest import WORLD_SCALE as SCALE
from jx_pipeline_tests.conftest import WORLD_SEED as SEED
from jx_pipeline_tests.conftest import run_cli


@pytest.fixture(scope="session")
def manifest(world) -> dict:
    return json.loads((world / "manifest.json").read_text(encoding="utf-8"))


def test_same_seed_and_scale_give_byte_identical_output(world, manifest, tmp_path):
    again = tmp_path / "again"
    generate.generate(
        generate.Options(out=again, scale=SCALE, seed=SEED, days=DAYS, progress=False, workers=1),
        log=lambda m: None,
    )
    assert (again / "manifest.json").read_bytes() == (world / "manifest.json").read_bytes()
    for rel in manifest["files"]:
        assert (again / rel).read_bytes() == (world / rel).read_bytes(), rel
    other = tmp_path / "other"
    generate.generate(
        generate.Options(out=other, scale=SCALE, seed=SEED + 1, days=0, progress=False), log=lambda m: None
    )
    assert (other / "truth/records.parquet").read_bytes() != (world / "truth/records.parquet").read_bytes()


def test_counts_grow_linearly_with_scale():
    admin = places.admin_units(SEED)
    small, _, _ = people.build(SEED, 0.001, admin)
    big, nat, _ = people.build(SEED, 0.004, admin)
    assert len(big.households) == 4 * len(small.households)
    assert len(big.orgs) == 4 * len(small.orgs)
    assert len(nat) == round(440_000 * 0.004)
    assert 3.6 <= len(big.persons) / len(small.persons) <= 4.4


def _code_in_use(code: str, year: int) -> bool:
    """python-stdnum's own division table (read through its numdb, not our parser): code in use in ``year``."""
    info = [props["county"] for _, props in numdb.get("cn/loc").info(code) if "county" in props]
    for period in ",".join(info).split(","):
        span = re.match(r"\[(\d*)-(\d*)\]", period)
        if period and (not span or int(span[1] or 0) <= year <= int(span[2] or 9999)):
            return True
    return False


def test_identities_are_valid_and_noise_makes_them_invalid():
    admin = places.admin_units(SEED)
    pop, _, _ = people.build(SEED, 0.001, admin)
    per = pop.persons
    for n, born, issued in zip(per.id_number, per.birth_date, per.id_issued, strict=True):
        assert re.fullmatch(r"\d{17}[\dX]", n) and ric.calc_check_digit(n) == n[-1], n
        assert n[6:14] == born and ric.get_birth_date(n) < date.fromisoformat(generate.Options.start)
        assert int(born[:4]) <= issued <= 2026 and _code_in_use(n[:6], issued), (n, issued)
    assert per.id_number.is_unique
    digits = pop.orgs[pop.orgs.kind != "N2"].credit_code
    assert all(uscc.is_valid(c) for c in digits)
    letters = pop.orgs[pop.orgs.kind == "N2"].credit_code
    assert len(letters) and not any(uscc.is_valid(c) for c in letters)  # valid GB 32100, rejected by stdnum
    assert all(ids.credit_code_check(c[:17]) == c[17] for c in letters)
    assert pop.orgs.credit_code.is_unique
    for i, n in enumerate(per.id_number[:500]):
        assert not ric.is_valid(render.mistype(n, i * 7919))
    for i, c in enumerate(digits[:300]):
        assert not uscc.is_valid(render.mistype(c, i * 104729))
    legacy = ids.legacy_id(per.id_number.iloc[0])
    assert len(legacy) == 15 and legacy.isdigit()


def test_ids_carry_the_code_of_the_issuing_county_in_the_issue_year():
    admin = places.admin_units(SEED)
    per = people.build(SEED, 0.002, admin)[0].persons
    local = per[~per.migrant]
    born = local.birth_date.str[:4].astype(int)
    # born before Jiaxing's 1983 codes, issued after: today's 3304xx codes, which stdnum's birth-year rule rejects
    late = local[(born < 1983) & local.id_number.str.startswith("3304")]
    assert len(late) > 0.2 * (born < 1983).sum()
    assert not any(ric.is_valid(n) for n in late.id_number[:200])
    # codes of the years in between: 海宁 as 海宁县 330423 / province-administered 339002, 平湖县 330422, 桐乡县 330425
    assert {"330423", "339002", "330422", "330425"} <= set(local.id_number.str[:6])
    # no resident ID numbers before the first cards of 1984: no codes of the 嘉兴地区 prefecture (3321xx)
    assert per.id_issued.min() >= ids.FIRST_ISSUE and not local.id_number.str.startswith("3321").any()
    young = per[per.birth_date >= "19990101"]
    assert (young.id_issued == young.birth_date.str[:4].astype(int)).all()  # numbered at birth registration
    # a migrant's ID carries the code its home county had when the number was issued (e.g. 庐江 340124 as 342622)
    mig = per[per.migrant]
    assert mig.home_county.notna().all() and per.home_county[~per.migrant].isna().all()
    assert set(mig.id_number.str[:2]) <= set(ids.MIGRANT_PROVINCES)
    assert (mig.id_number.str[:6] != mig.home_county).any()
    assert mig.groupby("household_id").home_county.nunique().max() == 1  # one home county per household


def test_legacy_15_digit_ids_only_for_numbers_issued_before_1999(world):
    truth = pd.read_parquet(world / "truth/records.parquet")
    admin = places.admin_units(SEED)
    per = people.build(SEED, SCALE, admin)[0].persons.set_index("person_id")
    seen15 = 0
    for feed in load_catalog().feeds:
        src = feed.column_for("id_number")
        if src is None or isinstance(feed.source, DatabaseSource):
            continue
        key = feed.column_for("record_key")
        for path in sorted((world / "landing" / feed.department / feed.id).rglob("*.*")):
            frame = _read(feed, path)
            short = frame[frame[src].fillna("").str.len() == 15]
            who = truth.set_index("record_key").person_id.reindex(short[key])
            assert (per.id_issued.reindex(who) < ids.SECOND_GENERATION).all(), (feed.id, path.name)
            seen15 += len(short)
    assert seen15 > 0


def test_every_truth_entity_exists_and_villages_are_real(world):
    truth = pd.read_parquet(world / "truth/records.parquet")
    ents = pd.read_parquet(world / "truth/entities.parquet")
    geo = pd.read_parquet(world / "entities/geo_entities.parquet")
    linked = truth.entity_id.dropna()
    assert len(linked) > 0.95 * len(truth)
    assert set(linked) <= set(ents.entity_id) and set(ents.entity_id) == set(geo.entity_id)
    admin = pd.read_parquet(world / "entities/admin_units.parquet")
    assert set(truth.village_code.dropna()) <= set(admin.code[admin.level == "village"])
    assert list(truth.columns[:7]) == [
        "feed_id",
        "record_key",
        "person_id",
        "org_id",
        "entity_id",
        "village_code",
        "difficulty",
    ]
    assert set(truth.difficulty) == {"easy", "medium", "hard", "undeterminable"}
    assert truth.entity_id[truth.difficulty == "undeterminable"].isna().all()
    assert set(truth.feed_id) == {f.id for f in load_catalog().feeds}


def test_geometry_tessellates_jiaxing_in_cgcs2000(world):
    meta = json.loads(pq.read_schema(world / "entities/admin_units.parquet").metadata[b"geo"])
    assert meta["columns"]["geometry"]["crs"]["id"] == {"authority": "EPSG", "code": 4490}
    admin = pd.read_parquet(world / "entities/admin_units.parquet")
    assert admin.level.value_counts().to_dict() == {"village": 1202, "town": 72, "county": 7, "city": 1}
    geoms = shapely.from_wkb(admin.geometry.to_numpy())
    city = geoms[admin.level.to_numpy() == "city"][0]
    for level in ("county", "town", "village"):
        parts = geoms[admin.level.to_numpy() == level]
        assert abs(shapely.area(parts).sum() / city.area - 1) < 1e-3, level  # no gaps, no overlaps
    minx, miny, maxx, maxy = city.bounds
    assert 120.2 < minx < maxx < 121.4 and 30.3 < miny < maxy < 31.1
    ents = pd.read_parquet(world / "entities/geo_entities.parquet")
    eg = shapely.from_wkb(ents.geometry.to_numpy())
    plates = ents.entity_type.to_numpy() == "address_point"
    village_geom = dict(zip(admin.code, geoms, strict=True))
    homes = np.array([village_geom[v] for v in ents.village_code[plates]], dtype=object)
    assert shapely.covers(homes, eg[plates]).all()  # every door plate lies in its own village
    assert {"farmland", "river", "forest", "address_point", "building", "road"} <= set(ents.entity_type)


def _read(feed, path: Path) -> pd.DataFrame:
    fmt = feed.source.format
    if fmt == "csv":
        raw = path.read_bytes()
        text = raw.decode(feed.source.encoding)  # strict: fails if the file is not in its declared encoding
        if feed.source.encoding == "utf-8-sig":
            assert raw.startswith(b"\xef\xbb\xbf")
        if feed.source.encoding in ("gbk", "gb18030") and any(ord(c) > 127 for c in text):
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True, dtype=str)
    if fmt == "xlsx":
        return pd.read_excel(path, dtype=str)
    return pd.read_parquet(path)


def test_every_feed_reads_back_in_its_declared_format(world, manifest):
    cat = load_catalog()
    truth = pd.read_parquet(world / "truth/records.parquet")
    for feed in cat.feeds:
        files = sorted(
            p
            for p in manifest["files"]
            if f"/{feed.id}/" in p or p.endswith(f"/{getattr(feed.source, 'table', '-')}.parquet")
        )
        assert files, feed.id
        keys = set()
        for rel in files:
            frame = (
                pd.read_parquet(world / rel)
                if isinstance(feed.source, DatabaseSource)
                else _read(feed, world / rel)
            )
            assert list(frame.columns) == list(feed.columns), (feed.id, rel)
            keys |= set(frame[feed.key[0]])
        assert keys == set(truth.record_key[truth.feed_id == feed.id]), feed.id


def test_increments_carry_new_changed_and_deleted_records(world, manifest):
    cat = load_catalog()
    ops = set()
    for feed in cat.feeds:
        if isinstance(feed.source, DatabaseSource) or feed.source.format != "parquet":
            continue
        for rel in manifest["files"]:
            if f"/{feed.id}/2026-11-0" in rel and not rel.endswith("20261101.parquet"):
                ops |= set(pd.read_parquet(world / rel)[feed.change_column])
    assert ops == {"I", "U", "D"}
    truth = pd.read_parquet(world / "truth/records.parquet")
    assert truth.deleted_day.notna().any() and (truth.first_day > 0).any()


def test_source_tables_load_into_postgres_with_watermarks(world, scratch_db):
    cat = load_catalog()
    counts = load_sources(world, scratch_db, cat)
    db_feeds = [f for f in cat.feeds if isinstance(f.source, DatabaseSource)]
    assert len(counts) == len(db_feeds) >= 20
    feed = db_feeds[0]
    with connect(scratch_db) as conn:
        n, latest, deleted = conn.execute(
            f'select count(*), max("{feed.source.watermark}"), count(*) filter (where "SCBZ" = \'1\')'
            f' from "{feed.department}"."{feed.source.table}"'
        ).fetchone()
    assert n == counts[f"{feed.department}.{feed.source.table}"] > 0
    assert latest >= pd.Timestamp("2026-11-01")  # increments after the initial extract carry later watermarks
    assert deleted >= 0


def test_bad_arguments_and_foreign_files(tmp_path):
    for args, needle in (
        (["--scale", "0"], "--scale 0.0 is out of range"),
        (["--scale", "11"], "out of range"),
        (["--seed", "-1"], "--seed -1 is out of range"),
    ):
        base = {"--scale": "0.001", "--seed": "1"}
        base.update(dict(zip(args[::2], args[1::2], strict=True)))
        done = run_cli(
            "world",
            "generate",
            *[x for kv in base.items() for x in kv],
            "--out",
            str(tmp_path / "x"),
            "--source-db",
            "none",
            "--quiet",
        )
        assert done.returncode == 2 and needle in done.stderr and "Traceback" not in done.stderr, done.stderr
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(JxError, match="holds files the generator did not write"):
        generate.generate(
            generate.Options(out=foreign, scale=0.001, seed=1, progress=False), log=lambda m: None
        )
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_regenerating_replaces_own_files_but_never_foreign_ones(world, manifest, tmp_path):
    out = tmp_path / "w"
    generate.generate(
        generate.Options(out=out, scale=SCALE, seed=SEED, days=1, progress=False), log=lambda m: None
    )
    (out / "landing" / "extra.csv").write_text("not ours")
    with pytest.raises(JxError, match=r"extra\.csv"):
        generate.generate(
            generate.Options(out=out, scale=SCALE, seed=SEED, days=0, progress=False), log=lambda m: None
        )
    assert (out / "landing" / "extra.csv").exists()
    (out / "landing" / "extra.csv").unlink()
    m = generate.generate(
        generate.Options(out=out, scale=SCALE, seed=SEED, days=0, progress=False), log=lambda m: None
    )
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert on_disk == set(m["files"])  # day 1 files of the previous run are gone
    assert np.isclose(m["scale"], SCALE)


def test_noise_file_is_validated(tmp_path):
    bad = tmp_path / "noise.yaml"
    bad.write_text("address:\n  typo: 2\n")
    with pytest.raises(JxError, match=r"address.typo = 2 is not a rate"):
        generate.load_noise(bad)
    bad.write_text("address:\n  sneeze: 0.1\n")
    with pytest.raises(JxError, match=r"unknown kind address\.sneeze"):
        generate.load_noise(bad)


HABITS = {  # kind: what every record carrying it shows (only that kind switched on)
    "county_short": lambda t, c: (
        t == elsewhere.short(c["county"]) + c["clean"].removeprefix("浙江省嘉兴市" + c["county"])
    ),
    "town_short": lambda t, c: t == c["clean"].replace(c["town"], elsewhere.short(c["town"]), 1),
    "separators": lambda t, c: any(s in t for s in render.SEPARATORS),
    "country_prefix": lambda t, c: t.startswith("中国浙江省嘉兴市"),
    "doubled_prefix": lambda t, c: "嘉兴嘉兴市" in t or "嘉兴市浙江省" in t or c["county"] * 2 in t,
    "zone_for_town": lambda t, c: any(z in t for z in c["zones"]) and c["town"] not in t,
    "migrant_origin": lambda t, c: t.endswith(c["clean"]) and t[: -len(c["clean"])][:2] in c["provinces"],
    "trailing_contact": lambda t, c: t.startswith(c["clean"]) and len(t) > len(c["clean"]),
}


@pytest.fixture(scope="module")
def small_model():
    from jx_pipeline.world.model import build_model

    admin = places.admin_units(SEED)
    pop, natural, _ = people.build(SEED, 0.002, admin)
    return build_model(admin, pop, natural)


def _only(kind: str | None, rate: float) -> dict:
    """The default noise with every address kind off except ``kind`` at ``rate``; no unknown addresses."""
    noise = generate.load_noise(None)
    noise["address"] = dict.fromkeys(noise["address"], 0.0) | ({kind: rate} if kind else {})
    noise["records"]["unknown_entity"] = 0.0
    return noise


def _render(feed_id: str, m, noise: dict, n: int):
    from jx_pipeline.world import records

    feed = next(f for f in load_catalog().feeds if f.id == feed_id)
    return records.make_records(feed, m, noise, SEED, n, pd.Timestamp("2026-11-01"), 0, 0)


@pytest.mark.parametrize("kind", sorted(HABITS))
def test_each_address_habit_appears_at_its_configured_rate(kind, small_model):
    m, rate = small_model, generate.load_noise(None)["address"][kind]
    feed, n = ("gaj_ldrk", 5000) if kind == "migrant_origin" else ("gaj_hjrk", 5000)
    clean, _ = _render(feed, m, _only(None, 0), n)
    always, truth = _render(feed, m, _only(kind, 1.0), n)
    usual, _ = _render(feed, m, _only(kind, rate), n)
    assert (clean.record_key == always.record_key).all()
    provinces = {p[:2] for p in pd.read_csv(ids.CHINA_DIVISIONS / "provinces.csv", dtype=str).name}
    index = {e: i for i, e in enumerate(m.ap_id)}
    eligible = np.array(
        [
            kind != "zone_for_town" or m.ap_town_code[index[e]] in elsewhere.zones_by_town()
            for e in truth.entity_id
        ]
    )
    shown = 0
    for i, text in enumerate(always.address):
        a = index[truth.entity_id[i]]
        ctx = {
            "county": m.ap_county[a],
            "town": m.ap_town[a],
            "zones": elsewhere.zones_by_town().get(m.ap_town_code[a], ()),
            "clean": clean.address[i],
            "provinces": provinces - {"浙江"},
        }
        if eligible[i]:
            assert HABITS[kind](text, ctx), (kind, text, clean.address[i])
            shown += 1
    assert shown > 50  # enough eligible records to measure on
    changed = (usual.address != clean.address).to_numpy()[eligible]
    sd = np.sqrt(rate * (1 - rate) / eligible.sum())
    assert abs(changed.mean() - rate) < 4 * sd + 0.002, (kind, changed.mean(), rate)
    assert (truth.entity_id.notna()).all()  # the habit changes the text, never the truth


def test_outside_addresses_have_no_jiaxing_truth(small_model):
    rate = generate.load_noise(None)["address"]["outside_address"]
    for feed_id in ("gaj_hjrk", "scjgj_qydj"):
        frame, truth = _render(feed_id, small_model, _only("outside_address", rate), 8000)
        out = truth.entity_id.isna().to_numpy()
        assert abs(out.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / len(out)), (feed_id, out.mean())
        assert truth.village_code[out].isna().all() and (truth.difficulty[out] == "undeterminable").all()
        cities = set(pd.read_csv(ids.CHINA_DIVISIONS / "cities.csv", dtype=str).name)
        provinces = set(pd.read_csv(ids.CHINA_DIVISIONS / "provinces.csv", dtype=str).name)
        starts = {n[:2] for n in provinces | cities if n not in ("嘉兴市", "市辖区")}
        for text in frame.address[out]:
            assert "嘉兴" not in text and text[:2] in starts, text
        assert not frame.address[~out].str.startswith(("深圳", "广东")).any()
    # places named like a Jiaxing one are among them (深圳市龙岗区平湖街道 is not 平湖市)
    frame, truth = _render("gaj_hjrk", small_model, _only("outside_address", 1.0), 4000)
    assert frame.address.str.contains("龙岗区平湖街道").any() and truth.entity_id.isna().all()


def test_world_truth_nulls_only_undeterminable_records(world, manifest):
    truth = pd.read_parquet(world / "truth/records.parquet")
    null = truth.entity_id.isna()
    assert (truth.village_code[null].isna()).all() and (truth.difficulty[null] == "undeterminable").all()
    subjects = truth.person_id.notna() | truth.org_id.notna()
    expect = manifest["noise"]["records"]["unknown_entity"] + manifest["noise"]["address"]["outside_address"]
    assert 0.5 * expect < null[subjects].mean() < 2 * expect


# multi-file landing days (issue 10, item 1): split extracts and corrected re-sends
DAY_FILE = re.compile(r"^(?P<feed>[a-z]+_[a-z0-9]+)_(?P<day>\d{8})(?P<suffix>_part[23]|_resend1)?\.[a-z]+$")


def _day_files(world: Path, manifest: dict) -> dict[tuple[str, str], list[str]]:
    """Landing files per (feed, day folder), in name order (the order the pipeline reads them)."""
    days: dict[tuple[str, str], list[str]] = {}
    for rel in sorted(manifest["files"]):
        parts = rel.split("/")
        if parts[0] == "landing":
            days.setdefault((parts[2], parts[3]), []).append(rel)
    return days


def test_multi_file_days_are_planned_at_the_configured_rates():
    rates = generate.load_noise(None)["deliveries"]
    frame = pd.DataFrame(
        {
            "record_key": [f"K{i:03d}" for i in range(100)],
            "address": [f"嘉兴市南湖区路{i}号" for i in range(100)],
            "change_type": ["I"] * 100,
        }
    )
    n, split, resent, records = 4000, 0, 0, 0
    for i in range(n):
        files, corrections = deliveries.plan(f"feed_{i}", i % 3, frame, SEED, rates)
        suffixes = [f.suffix for f in files]
        first = [f for f in files if f.suffix != "_resend1"]
        assert suffixes[: len(first)] == ["", "_part2", "_part3"][: len(first)]  # name order = delivery order
        assert pd.concat([f.frame for f in first]).record_key.tolist() == frame.record_key.tolist()
        split += len(first) > 1
        if corrections:
            resent += 1
            records += len(corrections)
            assert suffixes[-1] == "_resend1" and files[-1].frame.record_key.tolist() == [
                c.record_key for c in corrections
            ]
            wrong = pd.concat([f.frame for f in first]).set_index("record_key").address
            for c in corrections:  # the first copy is wrong, the re-send carries the true value
                assert (
                    wrong[c.record_key] == c.delivered != c.corrected == frame.address[int(c.record_key[1:])]
                )
                assert files[-1].frame.set_index("record_key").address[c.record_key] == c.corrected
        else:
            assert "_resend1" not in suffixes
    for seen, rate in ((split, rates["split"]), (resent, rates["resend"])):
        assert abs(seen - n * rate) <= 4 * (n * rate * (1 - rate)) ** 0.5, (seen, rate)
    share = records / resent / len(frame)
    assert 0.5 * rates["resend_records"] < share < 2 * rates["resend_records"] + 0.01


def test_world_has_split_extracts_and_corrected_resends(world, manifest):
    days = _day_files(world, manifest)
    names = [Path(f).name for files in days.values() for f in files]
    assert all(DAY_FILE.match(n) for n in names), [n for n in names if not DAY_FILE.match(n)][:3]
    split = [k for k, files in days.items() if any("_part2." in f for f in files)]
    resend = [k for k, files in days.items() if files[-1].rsplit(".", 1)[0].endswith("_resend1")]
    rates = manifest["noise"]["deliveries"]
    # feed-days with 2+ rows can be split; the tiny test world has few increments, so a loose band
    eligible = sum(1 for files in days.values() for f in files if "_part" not in f and "_resend" not in f)
    assert 0.3 * rates["split"] * eligible <= len(split) <= 2 * rates["split"] * eligible + 3
    assert 1 <= len(resend) <= 2 * rates["resend"] * eligible + 3
    resent = pd.read_parquet(world / generate.RESENDS)
    assert set(zip(resent.feed_id, resent.landing_date, strict=True)) == set(resend)


def test_truth_is_what_the_last_delivery_says(world, manifest, tmp_path):
    """Read a multi-file day the pipeline's way (name order, a later file's record wins): it equals the same
    world delivered in single files, with the same truth, and each re-send undoes the error of the first copy."""
    cat = load_catalog()
    days = _day_files(world, manifest)
    multi = sorted({feed for (feed, _), files in days.items() if len(files) > 1})
    assert multi
    single = tmp_path / "single"
    noise = tmp_path / "noise.yaml"
    noise.write_text("deliveries: {split: 0, resend: 0}\n")
    sub = cat.model_copy(update={"feeds": [f for f in cat.feeds if f.id in multi]})
    opts = generate.Options(
        out=single, scale=SCALE, seed=SEED, days=DAYS, noise_file=noise, progress=False, workers=1
    )
    generate.generate(opts, catalog=sub, log=lambda m: None)
    truth = pd.read_parquet(world / "truth/records.parquet")
    truth_single = pd.read_parquet(single / "truth/records.parquet")
    pd.testing.assert_frame_equal(
        truth[truth.feed_id.isin(multi)].reset_index(drop=True), truth_single.reset_index(drop=True)
    )
    resends = pd.read_parquet(world / generate.RESENDS)
    for (feed_id, day), files in days.items():
        if len(files) == 1:
            continue
        feed = cat.feed(feed_id)
        key = feed.key[0]
        frames = [_read(feed, world / f).assign(_file=Path(f).name) for f in files]
        delivered = pd.concat(frames, ignore_index=True)
        alone = _read(feed, single / files[0])  # the single-file world's one file of that day
        assert len(delivered) - len(alone) == len(
            resends[resends.feed_id.eq(feed_id) & resends.landing_date.eq(day)]
        )
        latest = delivered.drop_duplicates(key, keep="last").drop(columns="_file").reset_index(drop=True)
        want = alone.drop_duplicates(key, keep="last").reset_index(drop=True)
        pd.testing.assert_frame_equal(
            latest.sort_values(key, kind="stable").reset_index(drop=True),
            want.sort_values(key, kind="stable").reset_index(drop=True),
        )
        for r in resends[resends.feed_id.eq(feed_id) & resends.landing_date.eq(day)].itertuples():
            copies = delivered[delivered[key] == r.record_key]
            assert copies[r.column].iloc[0] == r.delivered != r.corrected == copies[r.column].iloc[-1]
            assert copies._file.iloc[-1] == r.file == files[-1].rsplit("/", 1)[1]
