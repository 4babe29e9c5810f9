"""The feed catalog validates, covers the 27 departments and 168 feeds, and names mistakes precisely."""

import pytest
import yaml

from jx_pipeline.catalog import DEFAULT_CATALOG, load_catalog
from jx_pipeline.catalog.schema import catalog_json_schema
from jx_pipeline.lib.errors import JxError


def test_shipped_catalog_validates_and_covers_the_city():
    cat = load_catalog()
    assert len(cat.departments) == 27 and len(cat.feeds) == 168
    assert {f.domain for f in cat.feeds} == {"population", "legal_person", "economy", "other"}
    formats = {
        (f.source.kind, getattr(f.source, "format", None), getattr(f.source, "encoding", None))
        for f in cat.feeds
    }
    for wanted in [
        ("file", "csv", "utf-8"),
        ("file", "csv", "utf-8-sig"),
        ("file", "csv", "gbk"),
        ("file", "csv", "gb18030"),
        ("file", "jsonl", "utf-8"),
        ("file", "xlsx", "utf-8"),
        ("file", "parquet", "utf-8"),
        ("database", None, None),
    ]:
        assert wanted in formats, wanted
    assert {f.coordinates.crs for f in cat.feeds if f.coordinates} == {"cgcs2000", "gcj02", "bd09"}
    assert 85_000_000 <= sum(f.records for f in cat.feeds) <= 95_000_000  # ~90M records at scale 1.0
    schema = catalog_json_schema()
    assert "feeds" in schema["properties"]


def _broken(tmp_path, mutate):
    doc = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))
    mutate(doc)
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(JxError) as err:
        load_catalog(path)
    return err.value.message


def test_unknown_canonical_field_names_feed_and_column(tmp_path):
    msg = _broken(tmp_path, lambda d: d["feeds"][0]["columns"].update({"XYZ": "shoe_size"}))
    assert "feed gaj_hjrk field columns" in msg and "'XYZ' maps to unknown canonical field 'shoe_size'" in msg


def test_key_outside_columns_and_duplicate_ids_are_refused(tmp_path):
    msg = _broken(tmp_path, lambda d: d["feeds"][1].update({"key": ["NOPE"]}))
    assert "feed gaj_ldrk" in msg and "key column(s) ['NOPE'] are not in columns" in msg
    msg = _broken(tmp_path, lambda d: d["feeds"].append(dict(d["feeds"][0])))
    assert "feed ids ['gaj_hjrk'] occur more than once" in msg


def test_bad_format_and_unknown_department(tmp_path):
    msg = _broken(tmp_path, lambda d: d["feeds"][1]["source"].update({"format": "dbf"}))
    assert "feed gaj_ldrk field source.format" in msg
    msg = _broken(tmp_path, lambda d: d["feeds"][2].update({"department": "nowhere"}))
    assert "unknown departments ['nowhere']" in msg
