"""The JSON lines of ``jx-pipeline address parse``, built from parts for speed.

Lines with the same core (the address before its flat) share every field but building, unit, room and remark,
and the start of the standard form: the JSON of those shared fields is encoded once per core and each line's
flat and remark are spliced in. The text is exactly ``json.dumps(row, ensure_ascii=False)`` of the row (the
fields of ``Parsed`` in their order, then ``standard``), as the plain loop wrote it.
"""

from __future__ import annotations

from json import encoder

from jx_pipeline.lib.address import AddressParser, standard_flat, standard_place

HEAD = ("county_code", "town_code", "village_code", "county", "town", "village", "road", "number", "complex")
HEAD += ("group",)
FLAT = ("building", "unit", "room", "remark")
TAIL = ("entity_id", "fuzzy", "province_code", "city_code", "outside", "confidence", "stop_reason")
ORDER = HEAD + FLAT + TAIL
_STR = encoder.encode_basestring  # the C function when there is one: '"text"', non-ASCII kept


def json_encoder():
    """json.dumps(obj, ensure_ascii=False) with the C encoder built once, not once per call as
    JSONEncoder.encode does (the same text)."""
    if encoder.c_make_encoder is None:  # a Python without the C accelerator
        import json

        return json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
    make = encoder.c_make_encoder(None, None, _STR, None, ": ", ", ", False, False, True)
    return lambda obj: "".join(make(obj, 0))


class JsonLines:
    """``line(text)``: the JSON object (no newline) of one address, with its standard form."""

    def __init__(self, parser: AddressParser):
        self.parser = parser
        self.dumps = json_encoder()
        self._parts: dict[int, tuple] = {}  # id(fields of a core) -> (fields, head JSON, tail JSON, place)

    def line(self, text: str) -> str:
        fields, flat, remark = self.parser.split(text)
        parts = self._parts.get(id(fields))
        if parts is None:
            parts = self._encode(fields)
        _, head, tail, place = parts
        if head is None:  # fields not in the expected order: the whole row, encoded plainly
            return self._plain(fields, flat, remark)
        if flat:
            g = flat.group
            building, unit = g("building") or g("building2"), g("unit")
            room = g("room") or g("room2") or g("room3")
        else:
            building, unit, room = fields["building"], fields["unit"], fields["room"]
        r = fields["remark"]
        if remark:
            r = r + remark if r else remark
        std = "null" if place is None else _STR(place + standard_flat(building, unit, room))
        # str or None (regex groups, the core's fields): written inline, not by a call per field
        return (
            f'{head}, "building": {"null" if building is None else _STR(building)}, '
            f'"unit": {"null" if unit is None else _STR(unit)}, "room": {"null" if room is None else _STR(room)}, '
            f'"remark": {"null" if r is None else _STR(r)}, {tail}, "standard": {std}}}'
        )

    def _encode(self, fields: dict):
        if len(self._parts) > 200_000:
            self._parts.clear()
        if tuple(fields) != ORDER:
            parts = (fields, None, None, None)
        else:
            # two calls of the C encoder, not one Python call per field: the same text, its braces cut
            dumps = self.dumps
            head = dumps({k: fields[k] for k in HEAD})[:-1]
            tail = dumps({k: fields[k] for k in TAIL})[1:-1]
            has = fields["county_code"] or fields["road"] or fields["group"]
            parts = (fields, head, tail, standard_place(self.parser, fields) if has else None)
        self._parts[id(fields)] = parts  # fields kept alive with it: its id is not reused
        return parts

    def _plain(self, fields: dict, flat, remark: str | None) -> str:
        p = self.parser.assemble(fields, flat, remark)
        row = p.__dict__
        row["standard"] = (
            standard_place(self.parser, row) + standard_flat(p.building, p.unit, p.room)
            if (p.county_code or p.road or p.group)
            else None
        )
        return self.dumps(row)
