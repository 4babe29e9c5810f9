"""Identity resolution: the master indexes of persons and legal persons, and each record's membership.

Exact keys first — the resident ID after the 15->18 upgrade, the credit code. A record without a usable key joins
the one master of the same name and birth date (or name and phone, or name and linked door plate) — names alone
are far too common; an
organisation without a code joins the one master of the same standardized name. Anything else stays a master of
its own. Master keys are pseudonymous (HMAC of the ID with a secret from the environment), so marts can carry them.
"""

import hashlib
import hmac
import re
from collections import Counter, defaultdict
from collections.abc import Callable

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog
from jx_pipeline.lib import locks, settings, staging

_ORG_PREFIX = re.compile(r"^(?:浙江省)?(?:嘉兴市|嘉兴)?")


def pseudonym(kind: str, value: str) -> str:
    digest = hmac.new(settings.pseudonym_secret(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return ("P" if kind == "person" else "O") + digest[:20]


def org_name_key(name: str | None) -> str | None:
    if not name:
        return None
    n = _ORG_PREFIX.sub("", name.strip()).replace("有限责任公司", "有限公司")
    return n.removesuffix("有限公司") or None


def _rows(conn, catalog: Catalog, fields: tuple[str, ...], need: str):
    for feed in catalog.feeds:
        mapped = set(feed.columns.values())
        latest = staging.current(conn, feed) if need in mapped else None
        if latest is None:
            continue
        cols = sql.SQL(", ").join(sql.Identifier(f) if f in mapped else sql.SQL("null") for f in fields)
        query = sql.SQL("select record_key, {} from {}").format(cols, latest)
        for row in conn.execute(query).fetchall():
            yield (feed.id, *row)


def resolve(
    conn: psycopg.Connection, catalog: Catalog, before_commit: Callable | None = None
) -> dict[str, Counter]:
    """Rebuild core.person, core.legal_person and core.identity_member; returns the count per method.
    ``before_commit(conn)`` (the asset's checks) runs in the rebuild's snapshot before it commits.

    Like linking: one rebuild at a time, from one snapshot of the staged records and of ``core.entity_link``."""
    with locks.exclusive(conn, "core"), locks.staged_snapshot(conn) as release:
        place = dict(
            ((f, k), e)
            for f, k, e in conn.execute(
                "select feed_id, record_key, entity_id from core.entity_link where entity_id is not null"
            ).fetchall()
        )
        people = [
            (*r, place.get((r[0], r[1])))
            for r in _rows(conn, catalog, ("id_number", "person_name", "birth_date", "phone"), "person_name")
        ]
        companies = list(_rows(conn, catalog, ("credit_code", "org_name"), "org_name"))
        release()
        members: list[tuple] = []
        persons: dict[str, dict] = {}
        by_name_birth, by_name_phone, by_name_place, by_person_name = (defaultdict(set) for _ in range(4))
        for feed_id, key, idno, name, birth, phone, entity in people:
            if idno:
                m = pseudonym("person", idno)
                p = persons.setdefault(m, {"id": idno, "names": Counter(), "birth": birth, "n": 0})
                p["names"][name] += 1
                p["n"] += 1
                members.append((feed_id, key, "person", m, "id_number"))
                if name and birth:
                    by_name_birth[(name, birth)].add(m)
                if name and phone:
                    by_name_phone[(name, phone)].add(m)
                if name and entity:
                    by_name_place[(name, entity)].add(m)
                if name:
                    by_person_name[(name,)].add(m)
        for feed_id, key, idno, name, birth, phone, entity in people:
            if idno:
                continue
            for method, index, k in (
                ("name_birth", by_name_birth, (name, birth)),
                ("name_phone", by_name_phone, (name, phone)),
                ("name_place", by_name_place, (name, entity)),  # the same name at the same door plate
                ("name_unique", by_person_name, (name,)),  # the name of one person only: rare names identify
            ):
                if all(k) and len(index.get(k, ())) == 1:
                    m = next(iter(index[k]))
                    persons[m]["n"] += 1
                    members.append((feed_id, key, "person", m, method))
                    break
            else:  # nobody with an ID matches: records without one meet on their own strongest key
                k = next((k for k in ((name, birth), (name, phone), (name, entity)) if all(k)), None)
                m = pseudonym("person", f"{k[0]}/{k[1]}" if k else f"{feed_id}/{key}")
                p = persons.setdefault(m, {"id": None, "names": Counter(), "birth": birth, "n": 0})
                p["names"][name] += 1
                p["n"] += 1
                members.append((feed_id, key, "person", m, "name_key" if k else "singleton"))

        orgs: dict[str, dict] = {}
        by_name = defaultdict(set)
        for feed_id, key, code, name in companies:
            if code:
                m = pseudonym("org", code)
                o = orgs.setdefault(m, {"code": code, "names": Counter(), "n": 0})
                o["names"][name] += 1
                o["n"] += 1
                members.append((feed_id, key, "legal_person", m, "credit_code"))
                if org_name_key(name):
                    by_name[org_name_key(name)].add(m)
        for feed_id, key, code, name in companies:
            if code:
                continue
            nk = org_name_key(name)
            if nk and len(by_name.get(nk, ())) == 1:
                m = next(iter(by_name[nk]))
                orgs[m]["n"] += 1
                members.append((feed_id, key, "legal_person", m, "org_name"))
            else:
                m = pseudonym("org", f"{feed_id}/{key}")
                orgs[m] = {"code": None, "names": Counter([name]), "n": 1}
                members.append((feed_id, key, "legal_person", m, "singleton"))

        conn.execute(
            "delete from core.identity_member; delete from core.person; delete from core.legal_person"
        )
        with conn.cursor().copy(
            "copy core.person (person_key, id_number, name, birth_date, records) from stdin"
        ) as c:
            for m, p in persons.items():
                c.write_row((m, p["id"], p["names"].most_common(1)[0][0], p["birth"], p["n"]))
        with conn.cursor().copy(
            "copy core.legal_person (org_key, credit_code, name, records) from stdin"
        ) as c:
            for m, o in orgs.items():
                c.write_row((m, o["code"], o["names"].most_common(1)[0][0], o["n"]))
        with conn.cursor().copy(
            "copy core.identity_member (feed_id, record_key, kind, master_key, method) from stdin"
        ) as c:
            for row in members:
                c.write_row(row)
        if before_commit:
            before_commit(conn)
    counts: dict[str, Counter] = {"person": Counter(), "legal_person": Counter()}
    for _, _, kind, _, method in members:
        counts[kind][method] += 1
    return counts
