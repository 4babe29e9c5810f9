"""How clerks write addresses, IDs, codes and dates: the canonical form and its noisy variants.

Each function takes a value and the noise decided for that record, so the same record always renders the
same way, and the kinds of noise a record carries are known for the ground truth's difficulty.
"""

from __future__ import annotations

import numpy as np

from jx_pipeline.world import vocab

DATE_VARIANTS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d", "%Y/%-m/%-d")
JUNK_ADDRESSES = ("不详", "嘉兴市", "详见附件", "无", "浙江省嘉兴市", "暂无")


def cn_number(n: int) -> str:
    """Chinese numerals as written in addresses: 3 -> 三, 12 -> 十二, 25 -> 二十五 (up to 99)."""
    if n < 10:
        return vocab.CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else vocab.CN_DIGITS[tens]
    return f"{head}十{vocab.CN_DIGITS[ones] if ones else ''}"


class AddressNoise:
    """The address-noise flags of a batch of records, drawn at once from the configured rates."""

    KINDS = (
        "drop_province",
        "drop_city",
        "city_short",
        "drop_county",
        "drop_town",
        "old_name",
        "typo",
        "fullwidth_digits",
        "chinese_numerals",
        "building_variant",
        "room_variant",
        "missing_number",
        "trailing_remark",
    )
    HARD = (
        "drop_county",
        "drop_town",
        "old_name",
        "typo",
        "missing_number",
        "fullwidth_digits",
        "chinese_numerals",
        "trailing_remark",
    )

    def __init__(self, rng: np.random.Generator, n: int, rates: dict[str, float]):
        self.flags = {k: rng.random(n) < rates.get(k, 0.0) for k in self.KINDS}
        self.pick = rng.integers(0, 1 << 30, n)  # one extra random number per record for choices

    def hard_count(self) -> np.ndarray:
        return sum(self.flags[k].astype(int) for k in self.HARD)


def address(m, a: int, i: int, noise: AddressNoise, building=None, unit=None, room=None) -> str:
    """The address of address point ``a`` (plus building/unit/room) as record ``i`` writes it."""
    f = {k: v[i] for k, v in noise.flags.items()}
    pick = int(noise.pick[i])
    county, town = m.ap_county[a], m.ap_town[a]
    if f["old_name"]:
        if pick % 2 and town.endswith("街道"):
            town = town[:-2] + "镇"
        else:
            county = vocab.COUNTY_ALIASES[m.ap_county_code[a]][
                pick % len(vocab.COUNTY_ALIASES[m.ap_county_code[a]])
            ]

    def num(v):
        return cn_number(v) if f["chinese_numerals"] and v < 100 else str(v)

    segs = []
    if not f["drop_province"]:
        segs.append("浙江省")
    if not f["drop_city"]:
        segs.append("嘉兴" if f["city_short"] else "嘉兴市")
    if not f["drop_county"]:
        segs.append(county)
    if not f["drop_town"]:
        segs.append(town)
    road = m.ap_road[a]
    place_start = len("".join(segs))
    if road is not None:
        segs.append(road)
        if not f["missing_number"]:
            segs.append(f"{m.ap_number[a]}号")
        if m.ap_complex[a] is not None:
            segs.append(m.ap_complex[a])
    else:
        segs.append(m.ap_village_short[a])
        segs.append(f"{num(int(m.ap_group[a]))}组")
        if not f["missing_number"]:
            segs.append(f"{m.ap_number[a]}号")
    if building is not None:
        bsuf = ("栋", "号楼")[pick % 2] if f["building_variant"] else "幢"
        rsuf = ("户", "号")[pick % 2] if f["room_variant"] else "室"
        segs.append(f"{num(int(building))}{bsuf}{num(int(unit))}单元{int(room)}{rsuf}")
    text = "".join(segs)
    if f["typo"]:
        for pos in range(place_start, len(text)):
            if text[pos] in vocab.TYPOS:
                text = text[:pos] + vocab.TYPOS[text[pos]] + text[pos + 1 :]
                break
    if f["fullwidth_digits"]:
        text = text.translate(vocab.FULLWIDTH)
    if f["trailing_remark"]:
        text += vocab.REMARKS[pick % len(vocab.REMARKS)]
    return text


def mistype(value: str, pick: int) -> str:
    """One character changed (a digit off by one, or a dropped character)."""
    pos = pick % len(value)
    if pick % 5 == 0:
        return value[:pos] + value[pos + 1 :]
    ch = value[pos]
    if ch.isdigit():
        return value[:pos] + str((int(ch) + 1 + pick % 8) % 10) + value[pos + 1 :]
    return value[:pos] + ("0" if ch != "0" else "1") + value[pos + 1 :]


def org_name_variant(name: str, pick: int) -> str:
    if name.startswith("嘉兴市"):
        return name[3:] if pick % 2 else "嘉兴" + name[3:]
    if name.startswith("嘉兴"):
        return "嘉兴市" + name[2:]
    if name.endswith("有限公司"):
        return name[:-4] + "公司"
    return name + "（普通合伙）" if pick % 3 == 0 else name
