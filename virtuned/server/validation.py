"""Request bodies into the contract's request types (contract.py), or problems.

msgspec decodes a body straight into its type, checking every limit as it goes: the
fast path of every valid request. It stops at the first problem, though, and words
it in JSON Schema's terms; so a body it refuses is read again with Python's JSON
parser (whose errors give a line and column) and checked against the same types, as
``msgspec.inspect`` describes them, to report every problem at once, each named by
its JSON pointer and worded for the service's users. That second pass also takes
what JSON means but msgspec's strict mode refuses: ``4.0`` is the integer 4.
"""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache

import msgspec
from msgspec import inspect as types

from virtuned.diagnostics import REQUEST, Diagnostic, Sources, Span, did_you_mean


class Problem(Exception):
    """An error answer: its kind (a key of contract.PROBLEMS) and either the
    diagnostics behind it (input that can be pointed at) or a plain message (a wrong
    path, a body too large, a time limit: nothing in the input to point at)."""

    def __init__(self, kind: str, problem: tuple[Diagnostic, ...] | str,
                 sources: Sources | None = None, headers: dict | None = None):
        super().__init__(kind)
        self.kind, self.sources, self.headers = kind, sources, headers or {}
        self.diagnostics = () if isinstance(problem, str) else tuple(problem)
        self.message = problem if isinstance(problem, str) else None


def invalid(pointer: str, message: str, hint: str | None = None) -> Diagnostic:
    """A validation failure of the request's JSON, named by its JSON pointer."""
    return Diagnostic("error", f"{pointer or '/'}: {message}", Span(REQUEST, 1, 1),
                      hint=hint)


def decode(raw: bytes, kind: type):
    """The request of type ``kind`` that ``raw`` spells, or Problem: 400 for a body
    that is not JSON, 422 naming every field that does not fit ``kind``."""
    try:
        return _decoder(kind).decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        refused = exc
    value, problems = check(parse_json(raw), kind)
    if problems:
        raise Problem("invalid-input", tuple(invalid(*problem) for problem in problems))
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:  # a rule the second pass lacks: msgspec's words
        raise Problem("invalid-input", (invalid(*_msgspec_words(exc)),)) from refused


@lru_cache(maxsize=None)
def _decoder(kind: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(kind)


def parse_json(raw: bytes):
    """The JSON value of a body, or a 400 Problem saying where it is not JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1  # in bytes
        raise Problem("malformed-request", (Diagnostic(
            "error", f"the body is not UTF-8: byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}", Span(REQUEST, line, col)),)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Problem("malformed-request", (Diagnostic(
            "error", f"malformed JSON: {exc.msg}", Span(REQUEST, exc.lineno, exc.colno)),
        )) from None
    except RecursionError:
        raise Problem("malformed-request", "the JSON nests too deeply") from None
    except ValueError:  # the only other: an integer of more digits than Python converts
        raise Problem("malformed-request", f"malformed JSON: a number has more than "
                      f"{sys.get_int_max_str_digits()} digits") from None


# ---------------------------------------------------------------- the second pass

def check(value, kind: type) -> tuple[object, list[tuple[str, str, str | None]]]:
    """A JSON value checked against the request type ``kind``: the value as msgspec
    can convert it (whole floats as integers), and every problem found in it as
    (JSON pointer, message, hint), in the order of the fields of ``kind``."""
    return _check(value, _type_info(kind), "")


@lru_cache(maxsize=None)
def _type_info(kind: type):
    return types.type_info(kind)


_KINDS = {types.StrType: "string", types.IntType: "integer", types.BoolType: "boolean",
          types.ListType: "array", types.DictType: "object", types.StructType: "object",
          types.NoneType: "null"}
_PYTHON_TYPES = {types.StrType: str, types.BoolType: bool, types.ListType: list,
                 types.DictType: dict, types.StructType: dict, types.NoneType: type(None)}


def _check(value, kind, pointer: str, extra: dict | None = None) -> tuple[object, list]:
    """``value`` as ``kind`` takes it (whole floats as integers), and the problems
    found in it: (JSON pointer, message, hint) triples, in the order of the body's
    fields as ``kind`` lists them."""
    if isinstance(kind, types.Metadata):
        return _check(value, kind.type, pointer, kind.extra or extra)
    if isinstance(kind, types.UnionType):
        return _check_union(value, kind, pointer, extra)
    if isinstance(kind, types.IntType):
        number = _integer(value)
        if number is None or not _in_range(number, kind):
            return value, [_refused(pointer, extra, value, f"expected an integer{_range(kind)}"
                                    f", got {_json_kind(value)}")]
        return number, []
    if not isinstance(value, _PYTHON_TYPES[type(kind)]):
        expected = "a JSON object" if isinstance(kind, types.StructType) else \
            _article(_KINDS[type(kind)])
        return value, [(pointer, f"expected {expected}, got {_json_kind(value)}", None)]
    check = _CHECKS.get(type(kind))
    return check(value, kind, pointer, extra) if check else (value, [])


def _check_union(value, kind, pointer: str, extra) -> tuple[object, list]:
    """A union takes a value by its JSON kind: the member for that kind judges it."""
    members = kind.types
    if value is None and any(isinstance(m, types.NoneType) for m in members):
        return None, []
    members = [m for m in members if not isinstance(m, types.NoneType)]
    for member in members:
        inner = member.type if isinstance(member, types.Metadata) else member
        if _takes(inner, value):
            return _check(value, member, pointer, extra)
    if len(members) == 1:
        return _check(value, members[0], pointer, extra)
    names = [_KINDS[type(m.type if isinstance(m, types.Metadata) else m)] for m in members]
    expected = _article(", ".join(names[:-1]) + " or " + names[-1])
    return value, [(pointer, f"expected {expected}, got {_json_kind(value)}", None)]


def _takes(kind, value) -> bool:
    """Whether ``value`` is of the JSON kind ``kind`` describes."""
    if isinstance(kind, types.IntType):
        return _integer(value) is not None
    if isinstance(value, bool):
        return isinstance(kind, types.BoolType)
    return isinstance(value, _PYTHON_TYPES.get(type(kind), ()))


def _check_text(value: str, kind, pointer: str, extra) -> tuple[object, list]:
    if kind.max_length is not None and len(value) > kind.max_length:
        return value, [(pointer, f"is {len(value)} characters; the limit is "
                                 f"{kind.max_length}", None)]
    try:  # JSON can spell lone surrogates ("\ud800"): not text, and not UTF-8
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return value, [(pointer, f"has a lone surrogate \\u{ord(value[exc.start]):04x}, "
                                 "which is not a character", None)]
    if kind.min_length is not None and len(value) < kind.min_length:
        return value, [_refused(pointer, extra, value, f"expected at least "
                                f"{kind.min_length} characters")]
    if kind.pattern is not None and not _pattern(kind.pattern).search(value):
        return value, [_refused(pointer, extra, value, f"does not match "
                                f"{kind.pattern}")]
    return value, []


def _check_list(value: list, kind, pointer: str, extra) -> tuple[object, list]:
    if kind.max_length is not None and len(value) > kind.max_length:
        return value, [(pointer, f"has {len(value)} entries; the limit is "
                                 f"{kind.max_length}", None)]
    if kind.min_length is not None and len(value) < kind.min_length:
        return value, [(pointer, "expected at least one entry" if kind.min_length == 1
                        else f"expected at least {kind.min_length} entries", None)]
    items, problems = [], []
    for index, item in enumerate(value):
        item, found = _check(item, kind.item_type, f"{pointer}/{index}")
        items.append(item)
        problems += found
    return items, problems


def _check_map(value: dict, kind, pointer: str, extra) -> tuple[object, list]:
    if kind.max_length is not None and len(value) > kind.max_length:
        return value, [(pointer, f"has {len(value)} entries; the limit is "
                                 f"{kind.max_length}", None)]
    pairs, problems = {}, []
    for key, item in value.items():
        where = f"{pointer}/{escape_pointer(key)}"
        _, found = _check(key, kind.key_type, where)
        if not found:
            item, found = _check(item, kind.value_type, where)
        pairs[key] = item
        problems += found
    return pairs, problems


def _check_struct(value: dict, kind, pointer: str, extra) -> tuple[object, list]:
    names = [field.encode_name for field in kind.fields]
    problems = [(f"{pointer}/{escape_pointer(key)}", "unknown field",
                 did_you_mean(key, names) or "the fields are " + ", ".join(names))
                for key in value if key not in names]
    fields = {}
    for field in kind.fields:
        where = f"{pointer}/{escape_pointer(field.encode_name)}"
        if field.encode_name not in value:
            if field.required:
                problems.append((where, "this field is required", None))
            continue
        fields[field.encode_name], found = _check(value[field.encode_name], field.type,
                                                  where)
        problems += found
    return fields, problems


_CHECKS = {types.StrType: _check_text, types.ListType: _check_list,
           types.DictType: _check_map, types.StructType: _check_struct}


def _refused(pointer: str, extra: dict | None, value, message: str) -> tuple:
    """A value its type refuses, in the type's own words if it has them."""
    if extra and "invalid" in extra:
        message = extra["invalid"].format(value=json.dumps(value))
    return pointer, message, (extra or {}).get("hint")


def _integer(value) -> int | None:
    """A JSON integer, or None. JSON has one kind of number: ``4.0`` is the integer 4
    (as JSON Schema, and so the OpenAPI document, counts it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _in_range(number: int, kind) -> bool:
    return ((kind.ge is None or number >= kind.ge) and (kind.le is None or number <= kind.le)
            and (kind.gt is None or number > kind.gt) and (kind.lt is None or number < kind.lt))


def _range(kind) -> str:
    bounds = [f"{word} {bound}" for word, bound in (
        (">=", kind.ge), ("<=", kind.le), (">", kind.gt), ("<", kind.lt)) if bound is not None]
    return f" {' and '.join(bounds)}" if bounds else ""


@lru_cache(maxsize=None)
def _pattern(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def escape_pointer(key: str) -> str:
    """A key as a JSON pointer's reference token (RFC 6901)."""
    return str(key).replace("~", "~0").replace("/", "~1")


def _json_kind(value) -> str:
    if value is None:
        return "null"
    return _article({bool: "boolean", int: "number", float: "number", str: "string",
                     list: "array", dict: "object"}.get(type(value), type(value).__name__))


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _msgspec_words(exc: msgspec.ValidationError) -> tuple[str, str]:
    """(JSON pointer, message) of msgspec's ``... - at `$.a[0]``` message."""
    message, _, path = str(exc).rpartition(" - at `")
    if not message:
        return "", str(exc)
    steps = re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]", path.rstrip("`"))
    return "".join(f"/{name or index}" for name, index in steps), message
