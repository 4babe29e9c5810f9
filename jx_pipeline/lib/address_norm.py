"""Normalization of an address as people write it, before any name is looked up.

Writers separate levels with ``-``, ``_``, ``?`` (a lost character), spaces or commas; put 中国 in front; write
full-width digits and 一二三 for 123; and end with a remark, a name or a phone number (…1346室廖, …电联,
…门口). This module turns all of that into one compact string and the remark split off, so the parser sees
names glued together the way the division index stores them.
"""

import re
import unicodedata

_CJK = "\u4e00-\u9fff"
# separators between two names (never between digits: 11-10-2127 is building-unit-room)
_SEP = re.compile(
    rf"(?<=[{_CJK}\)）])[\s\-_?？,，、/|·:：;；.。]+|[\s\-_?？,，、/|·:：;；.。]+(?=[{_CJK}\(（])"
)
_SPACE = re.compile(r"\s+")
_COUNTRY = re.compile(r"^(?:中华人民共和国|中国)")
_PHONE = re.compile(
    r"(?:(?:联系)?(?:电话|手机|tel|TEL|Tel)[:：]?)?(?:\+?86)?1[3-9]\d{9}$|(?:电话|手机)[:：]?\d[\d\-]{6,}$"
)
_REMARK = re.compile(
    r"(?:[(（][^()（）]*[)）]|旁边|旁|附近|对面|隔壁|[东南西北]侧|楼下|门口|电联|电话联系|请?电话|收件?|转交?)+$"
)
# a name after the room or number: 1346室廖, 12号张三 (not 号楼, 号院 … which continue the address)
_NAME = re.compile(rf"(?<=\d[室户号])(?![楼院幢栋弄门铺店库房厂])[{_CJK}]{{1,3}}$")
# …7号恒创苑 is a complex after the number, not a name: a complex's name ends with one of these
_COMPLEX_END = set("苑园庭邸村府城居湾墅寓厦阁轩里坊舍院宅楼座馆场区湖岸")
_CN_NUM = re.compile(r"([〇零一二两三四五六七八九十]+)(?=组|幢|栋|号楼|单元|号|室|户|楼|层)")
_HAS_CN_NUM = re.compile("[〇零一二两三四五六七八九十]")
_LAST_REMARK = set(")）边旁近面壁侧下口联系收件转交话")
_ENDS = {
    _PHONE: set("0123456789"),
    _REMARK: _LAST_REMARK,
    _NAME: {chr(c) for c in range(0x4E00, 0xA000)},
}
_STEPS = tuple((p, _ENDS[p]) for p in (_PHONE, _REMARK, _NAME, _REMARK))
_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}


def _cn_to_int(text: str) -> str:
    if "十" not in text:
        return "".join(str(_DIGITS[c]) for c in text)
    tens, _, ones = text.partition("十")
    return str((_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0))


def normalize(text: str) -> tuple[str, str | None]:
    """NFKC (full-width digits and brackets), separators and spaces out, 中国 off the front, Chinese numerals
    before 组/幢/单元/室 as digits; the trailing remark, phone or name split off."""
    s = unicodedata.normalize("NFKC", text or "").strip()
    if not s.isalnum():  # separators or spaces somewhere (isalnum is true for Chinese characters and digits)
        s = _SPACE.sub("", _SEP.sub("", s))
    if s.startswith("中"):
        s = _COUNTRY.sub("", s)
    remarks = []
    for pattern, ends in _STEPS:
        if not s or s[-1] not in ends:  # a cheap test on the last character first
            continue
        # a name is 1-3 characters at the end: searching from there finds the same (leftmost) match
        m = pattern.search(s, max(0, len(s) - 3)) if pattern is _NAME else pattern.search(s)
        if m and pattern is _NAME and s[m.start() - 1] == "号" and s[-1] in _COMPLEX_END:
            continue
        if m and m.start() > 0:
            s, remarks = s[: m.start()], [m.group(0), *remarks]
    if _HAS_CN_NUM.search(s):
        s = _CN_NUM.sub(lambda m: _cn_to_int(m.group(1)), s)
    return s, ("".join(remarks) or None)
