"""What MySQL / MariaDB column types can hold, for a change's safety class: whether a
column going from one type to another keeps every value. Types are COLUMN_TYPE as the
server prints them (``int(11)``, ``int(10) unsigned``, ``varchar(20)``, ``decimal(10,2)``,
``enum('a','b')``); anything not known here counts as narrowing, the careful side."""

from __future__ import annotations

import re

_INTS = ("tinyint", "smallint", "mediumint", "int", "bigint")
# Bytes a string type can hold (characters for char/varchar, given by their length).
_TEXTS = {"tinytext": 255, "text": 65535, "mediumtext": 16777215, "longtext": 4294967295}
_BLOBS = {"tinyblob": 255, "blob": 65535, "mediumblob": 16777215, "longblob": 4294967295}
_TYPE = re.compile(r"^\s*(\w+)\s*(?:\(([^)]*)\))?\s*(.*?)\s*$", re.S)


def _parts(sql_type: str) -> tuple[str, str, str]:
    m = _TYPE.match(sql_type.lower())
    if m is None:
        return sql_type.lower(), "", ""
    return m.group(1), m.group(2) or "", m.group(3)


def _capacity(base: str, args: str) -> int | None:
    """Characters a string type holds (None: not a string type)."""
    if base in ("char", "varchar"):
        return int(args) if args.strip().isdigit() else (1 if base == "char" else None)
    return _TEXTS.get(base)


def _enum_values(args: str) -> list[str]:
    return re.findall(r"'((?:[^']|'')*)'", args)


def type_change_narrows(old: str, new: str) -> bool:
    if old.strip().lower() == new.strip().lower():
        return False
    ob, oa, orest = _parts(old)
    nb, na, nrest = _parts(new)
    if ob in _INTS and nb in _INTS:
        o_unsigned, n_unsigned = "unsigned" in orest, "unsigned" in nrest
        if o_unsigned == n_unsigned:
            return _INTS.index(nb) < _INTS.index(ob)
        # unsigned -> a signed type strictly wider holds every value; signed -> unsigned
        # loses the negatives
        return o_unsigned is False or _INTS.index(nb) <= _INTS.index(ob)
    if ob in ("decimal", "numeric") and nb in ("decimal", "numeric"):
        op, _, os_ = (oa or "10,0").partition(",")
        np_, _, ns = (na or "10,0").partition(",")
        try:
            o_int, n_int = int(op) - int(os_ or 0), int(np_) - int(ns or 0)
            return not (int(ns or 0) >= int(os_ or 0) and n_int >= o_int)
        except ValueError:
            return True
    if (ob, nb) in (("float", "double"), ("date", "datetime"), ("date", "timestamp")):
        return False
    if ob in ("enum", "set") and nb == ob:
        return not set(_enum_values(oa)) <= set(_enum_values(na))
    if ob in _BLOBS and nb in _BLOBS:
        return _BLOBS[nb] < _BLOBS[ob]
    old_cap, new_cap = _capacity(ob, oa), _capacity(nb, na)
    if new_cap is not None:
        if old_cap is not None:
            return new_cap < old_cap
        if ob in _INTS:
            return new_cap < 20  # every integer's text fits in 20 characters
        if ob in ("enum", "set"):
            return new_cap < max((len(v) for v in _enum_values(oa)), default=0) * (
                1 if ob == "enum" else len(_enum_values(oa)) + 1)
    return True


# Table options an engine sets without being asked (Aria: PAGE_CHECKSUM), which stay
# behind, shown, when the table moves to another engine: leaving that engine sets them
# back to the default unless the wanted table names them.
ENGINE_IMPLIED_OPTIONS = {"aria": ("PAGE_CHECKSUM", "TRANSACTIONAL")}
