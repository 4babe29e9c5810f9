"""How clerks write addresses, IDs, codes and dates: the canonical form and its noisy variants.

Each function takes a value and the noise decided for that record, so the same record always renders the
same way, and the kinds of noise a record carries are known for the ground truth's difficulty.
"""

from __future__ import annotations

import numpy as np

from jx_pipeline.world import elsewhere, vocab

DATE_VARIANTS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d", "%Y/%-m/%-d")
JUNK_ADDRESSES = ("不详", "嘉兴市", "详见附件", "无", "浙江省嘉兴市", "暂无")
SEPARATORS = ("-", "_", "?", " ", "　", "  ", "/")  # between the levels: 浙江省-嘉兴市-嘉善县-姚庄镇-…


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
        "county_short",
        "town_short",
        "separators",
        "country_prefix",
        "doubled_prefix",
        "zone_for_town",
        "migrant_origin",
        "trailing_contact",
        "outside_address",
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
        "county_short",
        "town_short",
        "separators",
        "doubled_prefix",
        "zone_for_town",
        "migrant_origin",
        "trailing_contact",
    )

    def __init__(self, rng: np.random.Generator, n: int, rates: dict[str, float]):
        self.flags = {k: rng.random(n) < rates.get(k, 0.0) for k in self.KINDS}
        self.pick = rng.integers(0, 1 << 30, n)  # one extra random number per record for choices
        self._packed: list[int] | None = None
        self.picks = self.pick.tolist()

    def packed(self) -> list[int]:
        """Each record's flags as one int (bit BIT[kind]): per-record reads of Python ints are fast."""
        if self._packed is None:
            bits = np.zeros(len(self.pick), dtype=np.int64)
            for j, k in enumerate(self.KINDS):
                bits |= self.flags[k].astype(np.int64) << j
            self._packed = bits.tolist()
        return self._packed

    def restrict(self, kind: str, eligible: np.ndarray) -> None:
        """Only ``eligible`` records can carry ``kind`` (e.g. a home county in front only for migrants)."""
        self.flags[kind] = self.flags[kind] & eligible
        self._packed = None

    def hard_count(self) -> np.ndarray:
        return sum(self.flags[k].astype(int) for k in self.HARD)


_BIT = {k: 1 << j for j, k in enumerate(AddressNoise.KINDS)}


def address(
    m, a: int, i: int, noise: AddressNoise, building=None, unit=None, room=None, home=None, contact=None
) -> str:
    """The address of address point ``a`` (plus building/unit/room) as record ``i`` writes it; ``home`` is a
    migrant's home county code, ``contact`` the (name, phone) a clerk may append."""
    bits, pick = noise.packed()[i], noise.picks[i]
    county, town = m.ap_county[a], m.ap_town[a]
    if bits & _BIT["old_name"]:
        if pick % 2 and town.endswith("街道"):
            town = town[:-2] + "镇"
        else:
            county = vocab.COUNTY_ALIASES[m.ap_county_code[a]][
                pick % len(vocab.COUNTY_ALIASES[m.ap_county_code[a]])
            ]
    if bits & _BIT["county_short"]:  # 海宁工人路…, 桐乡濮院…: the county at the start, without its suffix
        county = elsewhere.short(county)
    if bits & _BIT["town_short"]:
        town = elsewhere.short(town)
    if bits & _BIT["zone_for_town"]:  # the zone or well-known place standing for the town
        zones = elsewhere.zones_by_town()[m.ap_town_code[a]]
        town = zones[(pick >> 3) % len(zones)]

    def num(v):
        return cn_number(v) if (bits & _BIT["chinese_numerals"]) and v < 100 else str(v)

    upper, lower = [], []
    if not ((bits & _BIT["drop_province"]) or (bits & _BIT["county_short"])):
        upper.append("浙江省")
    if not ((bits & _BIT["drop_city"]) or (bits & _BIT["county_short"])):
        upper.append("嘉兴" if (bits & _BIT["city_short"]) else "嘉兴市")
    if not (bits & _BIT["drop_county"]) or (bits & _BIT["county_short"]):
        lower.append(county)
    if not (bits & _BIT["drop_town"]) or (bits & _BIT["town_short"]) or (bits & _BIT["zone_for_town"]):
        lower.append(town)
    if bits & _BIT["doubled_prefix"]:  # 嘉兴嘉兴市…, 浙江省嘉兴市浙江省嘉兴市…, 桐乡市桐乡市…
        form = (pick >> 4) % 3
        if form == 0:
            upper = ["嘉兴", "嘉兴市"]
        elif form == 1:
            upper = ["浙江省嘉兴市", "浙江省嘉兴市"]
        else:
            lower = [county, county] + [x for x in lower if x != county]
    lead = upper + lower
    if (bits & _BIT["migrant_origin"]) and home is not None:  # 安徽省庐江县 + the Jiaxing address
        lead.insert(0, elsewhere.county_path(home, pick >> 6))
    if bits & _BIT["country_prefix"]:
        lead.insert(0, "中国")
    sep = SEPARATORS[(pick >> 8) % len(SEPARATORS)] if (bits & _BIT["separators"]) else ""
    segs = [sep.join(lead) + sep] if lead else []
    road = m.ap_road[a]
    place_start = len(segs[0]) if segs else 0
    if road is not None:
        segs.append(road)
        if not (bits & _BIT["missing_number"]):
            segs.append(f"{m.ap_number[a]}号")
        if m.ap_complex[a] is not None:
            segs.append(m.ap_complex[a])
    else:
        segs.append(m.ap_village_short[a])
        segs.append(f"{num(int(m.ap_group[a]))}组")
        if not (bits & _BIT["missing_number"]):
            segs.append(f"{m.ap_number[a]}号")
    if building is not None:
        bsuf = ("栋", "号楼")[pick % 2] if (bits & _BIT["building_variant"]) else "幢"
        rsuf = ("户", "号")[pick % 2] if (bits & _BIT["room_variant"]) else "室"
        segs.append(f"{num(int(building))}{bsuf}{num(int(unit))}单元{int(room)}{rsuf}")
    text = "".join(segs)
    if bits & _BIT["typo"]:
        for pos in range(place_start, len(text)):
            if text[pos] in vocab.TYPOS:
                text = text[:pos] + vocab.TYPOS[text[pos]] + text[pos + 1 :]
                break
    if bits & _BIT["fullwidth_digits"]:
        text = text.translate(vocab.FULLWIDTH)
    if bits & _BIT["trailing_remark"]:
        text += vocab.REMARKS[pick % len(vocab.REMARKS)]
    if bits & _BIT["trailing_contact"]:
        text += contact_tail(pick >> 12, contact)
    return text


def contact_tail(pick: int, contact) -> str:
    """What a clerk appends after the address: the resident's surname or name, a phone, 电联, 门口 (…1346室廖)."""
    name, phone = contact if contact is not None else (vocab.SURNAMES[pick % 60], None)
    form = pick % 7
    if form == 0:
        return name[0]
    if form == 1:
        return name
    if form == 2:
        return "电联"
    if form == 3:
        return "门口"
    if form == 4 and phone:
        return " " + phone
    if form == 5 and phone:
        return f"（电联{phone}）"
    return name[0] + "先生" if pick % 2 else name[0] + "女士"


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
