"""The real-address bench's gold rules (bench/naacl_gold.py), on hand-written addresses in the corpus' format.

The bench is only as good as the codes it takes for gold: these check each rule against the NBS 2022 files —
the level suffix swapped (富阳市 for 富阳区, 闲林镇 for 闲林街道), committee words (春华村 is 春华村委会), the parent
scope, towns that changed county since the corpus was labelled, and that an ambiguous or vanished name is left
out rather than guessed. The addresses are made up for the test; no corpus text is used.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

from jx_pipeline.lib import settings

_spec = importlib.util.spec_from_file_location(
    "naacl_gold", Path(__file__).resolve().parents[1] / "bench" / "naacl_gold.py"
)
naacl_gold = sys.modules.setdefault("naacl_gold", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(naacl_gold)


def bio(*spans: tuple[str, str]) -> str:
    """Corpus lines for labelled spans: one character per line (digits may share a token), BIO labels."""
    lines = []
    for label, text in spans:
        tokens = [text] if text.isdigit() else list(text)
        for i, tok in enumerate(tokens):
            lines.append(f"{tok} {'O' if label == 'O' else ('B-' if i == 0 else 'I-') + label}")
    return "\n".join(lines) + "\n\n"


@pytest.fixture(scope="module")
def div():
    return naacl_gold.Divisions.load(settings.DATA_DIR / "china_divisions")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "dev.txt"
    path.write_text(
        bio(("prov", "浙江省"), ("city", "杭州市"), ("district", "富阳市"), ("town", "富春街道"),
            ("community", "春华村"), ("road", "5组"), ("roadno", "12"), ("O", "号"))
        + bio(("district", "西湖区"), ("road", "文三路"), ("roadno", "90号"))
        + bio(("city", "杭州市"), ("district", "西湖区"), ("poi", "某某大厦"))
        + bio(("town", "城东街道"), ("road", "人民路"))
        + bio(("city", "杭州市"), ("district", "江干区"), ("town", "四季青街道"))
        + bio(("town", "闲林镇"), ("redundant", "闲林镇"), ("poi", "某某花园"))
        + bio(("city", "杭州市"), ("district", "富阳区"), ("town", "银湖街道"), ("town", "富春街道"), ("community", "春华村"))
        + bio(("city", "杭州市"), ("district", "余杭区"), ("town", "临平镇"), ("town", "星桥街道"), ("road", "某某路")),
        encoding="utf-8",
    )  # fmt: skip
    return list(naacl_gold.read_corpus(path))


def codes(gold):
    return {level: hit.code for level, hit in gold.items()}


def test_reads_spans_in_order_with_multi_character_tokens(corpus):
    a = corpus[0]
    assert a.text == "浙江省杭州市富阳市富春街道春华村5组12号"
    assert a.spans[4:] == [("community", "春华村"), ("road", "5组"), ("roadno", "12")]
    assert a.source == "dev.txt:1" and len(corpus) == 8


def test_suffix_swap_and_committee_words_resolve_down_to_village(div, corpus):
    gold = div.gold(corpus[0])
    # 富阳市 became 富阳区 (2014); the village is listed as 春华村委会
    assert codes(gold) == {
        "prov": "33",
        "city": "3301",
        "county": "330111",
        "town": "330111001",
        "village": "330111001212",
    }
    assert naacl_gold.city_of(gold) == "3301"


def test_a_name_two_units_share_is_left_out_unless_the_parent_decides(div, corpus):
    alone = div.gold(corpus[1])  # 西湖区 of Hangzhou and of Nanchang
    assert alone["county"].code is None and alone["county"].why == "ambiguous"
    assert naacl_gold.city_of(alone) is None
    assert div.gold(corpus[2])["county"].code == "330106"
    town = div.gold(corpus[3])["town"]  # five Zhejiang towns are called 城东街道
    assert town.code is None and town.why == "ambiguous"


def test_a_vanished_county_is_left_out_and_its_town_found_in_the_city(div, corpus):
    gold = div.gold(corpus[4])  # 江干区 was abolished in 2021; 四季青街道 went to 上城区
    assert gold["county"].code is None and gold["county"].why == "unknown"
    assert gold["town"].code == "330102014"


def test_city_from_a_town_alone_and_redundant_spans_ignored(div, corpus):
    gold = div.gold(corpus[5])
    assert codes(gold) == {"town": "330110011"}  # 闲林街道, 余杭区
    assert naacl_gold.city_of(gold) == "3301"


def test_a_county_the_town_has_left_is_left_out_as_stale(div):
    moved = div.resolve({"city": "杭州市", "county": "余杭区", "town": "临平街道"})  # to 临平区 in 2021
    assert moved["county"].why == "stale" and moved["town"].code == "330113001"
    now = div.resolve({"county": "苍南县", "town": "龙港镇"})  # made 龙港市 in 2019
    assert moved["county"].code is None and now["county"].why == "stale" and now["town"].why == "county_now"
    assert naacl_gold.city_of(now) == "3303"


def test_a_village_is_only_looked_up_below_a_place_found(div):
    alone = div.resolve({"town": "观澜镇", "village": "春华村"})  # not Zhejiang's 观澜: no place to look in
    assert alone["town"].why == "unknown" and alone["village"].why == "no_parent"
    assert div.resolve({"county": "富阳区", "village": "春华村"})["village"].code == "330111001212"


def test_a_name_above_that_decides_nothing_still_narrows_the_scope(div):
    chongqing = div.resolve(
        {"city": "重庆市", "town": "花桥镇"}
    )  # Chongqing's two city rows: not Zhejiang's 花桥镇
    assert chongqing["city"].why == "ambiguous" and chongqing["town"].why == "unknown"
    assert naacl_gold.city_of(chongqing) is None
    jiande = div.resolve({"city": "建德市", "town": "新安江街道"})  # a county labelled city
    assert jiande["city"].code is None and jiande["town"].code == "330182001"
    assert naacl_gold.city_of(jiande) == "3301"
    assert div.resolve({"city": "增城市", "town": "新塘镇"})["town"].why == "unknown"  # 增城区 of Guangzhou


def test_autonomous_county_without_its_peoples(div):
    assert div.resolve({"city": "丽水市", "county": "景宁县"})["county"].code == "331127"


def test_two_towns_named_leave_the_town_out_and_the_village_is_sought_in_the_county(div, corpus):
    gold = div.gold(corpus[6])
    assert gold["town"].code is None and gold["town"].why == "ambiguous"
    assert gold["village"].code == "330111001212"  # 春华村 of 富春街道, found in 富阳区
    both_moved = div.gold(corpus[7])  # either town left 余杭区 for 临平区 in 2021
    assert both_moved["town"].why == "ambiguous" and both_moved["county"].why == "stale"


def test_tool_names_resolve_inside_their_own_parent(div):
    found = div.resolve(
        {"prov": "浙江省", "city": "杭州市", "county": "富阳区", "town": "银湖街道", "village": None}
    )
    assert codes(found) == {"prov": "33", "city": "3301", "county": "330111", "town": "330111006"}
    assert div.resolve({"city": "南昌市", "county": "西湖区"})["county"].code == "360103"


def test_a_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("浙 B-prov\n江 I-prov\n省\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train.txt:3"):
        list(naacl_gold.read_corpus(path))


def test_an_address_naming_jiaxing_anywhere_is_reserved(div):
    spec = importlib.util.spec_from_file_location(
        "address_real", Path(__file__).resolve().parents[1] / "bench" / "address_real.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    home_first = naacl_gold.Address(
        "江西省上饶市鄱阳县海宁市某某路1号",
        [
            ("prov", "江西省"),
            ("city", "上饶市"),
            ("district", "鄱阳县"),
            ("district", "海宁市"),
            ("road", "某某路"),
        ],
        "made-up",
    )
    assert naacl_gold.city_of(div.gold(home_first)) == "3611"  # assigned to the home city …
    assert bench.touches_reserved(div, home_first)  # … but reserved all the same
    assert not bench.touches_reserved(
        div, naacl_gold.Address("杭州市富阳区某某路1号", [("city", "杭州市")], "x")
    )
