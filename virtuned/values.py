"""Typed values of the trait language: integers, sizes with units, CPU lists, words.

Each ``parse_*`` takes the literal text and returns the value or raises ValueError
with a message that names what was expected; the resolver adds the source span.
CPU lists use libvirt's syntax (``0-3,8,^2``) in and out, always written compact.
"""

from __future__ import annotations

import re

import attrs

from virtuned.frozen import frozen

# Sizes are written in libvirt's units (docs/formatdomain "memory"), in the trait
# language as in domain XML: unit_bytes reads them all; these are the ones named.
SHOWN_UNITS = "KB, k, K, KiB, MB, M, MiB, GB, G, GiB, TB, T, TiB"
# The largest CPU id libvirt reads in a cpuset, plus one: VIR_DOMAIN_CPUMASK_LEN
# (src/conf/domain_conf.h, 16384 since libvirt 1.2.x). A CPU list is checked
# against its bound before any range is expanded, so no list holds more ids.
MAX_CPU_IDS = 16384
# Longer digit strings are refused before int() reads them: no slot or attribute
# takes a number near 10**30, and int() of a huge string costs quadratic time.
_MAX_DIGITS = 30
# Patterns are compiled when first used (re's own cache): a run needs few of them.
_SIZE = r"([0-9]+)([A-Za-z]+)"


@frozen(order=True)
class Size:
    """A quantity of bytes that remembers how the author wrote it."""

    bytes: int
    text: str = attrs.field(eq=False, order=False)

    def __str__(self) -> str:
        return self.text

    @property
    def kib(self) -> int:
        return self.bytes // 1024


def is_whole(text: str) -> bool:
    """Whether ``text`` is a whole number in ASCII digits (isdigit() alone takes
    '²' too; among ASCII characters it takes only 0-9)."""
    return text.isascii() and text.isdigit()


def parse_int(text: str) -> int:
    if not is_whole(text):
        raise ValueError(f"expected a whole number, got {_shown(text)}")
    return _whole(text)


def whole_or_none(text: str) -> int | None:
    """``text`` as a whole number, or None where it is not one (or an absurd one):
    parse_int's checks, without raising and catching on the planner's path."""
    return int(text) if is_whole(text) and _fits(text) else None


def _whole(digits: str) -> int:
    """ASCII digits → int, refusing absurd lengths before converting them."""
    if not _fits(digits):
        raise ValueError(f"{_shown(digits)} is too large (more than {_MAX_DIGITS} digits)")
    return int(digits)


def _fits(digits: str) -> bool:
    return len(digits) <= _MAX_DIGITS or len(digits.lstrip("0")) <= _MAX_DIGITS


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short: never a tenant's megabyte echoed."""
    return repr(text) if len(text) <= limit else \
        f"{text[:limit]!r}... ({len(text)} characters)"


def parse_size(text: str) -> Size:
    """A size with its unit, as the trait language writes it: ``1GiB``, ``2M``."""
    match = re.fullmatch(_SIZE, text)
    if not match:
        raise ValueError(f"expected a size with a unit like 1GiB or 2MiB, got {text!r}")
    number, unit = match.groups()
    factor = unit_bytes(unit)
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} in {text!r}; use one of {SHOWN_UNITS}")
    return Size(_whole(number) * factor, text)


def kib(number: str, unit: str | None) -> int:
    """A size as domain XML writes it, a number and a unit attribute (KiB when
    there is none), in KiB; ValueError for what libvirt would refuse."""
    factor = unit_bytes(unit or "KiB")
    if factor is None:
        raise ValueError(f"unknown unit {unit!r}")
    if not is_whole(number):
        raise ValueError(f"expected a whole number, got {_shown(number)}")
    return _whole(number) * factor // 1024


def parse_cpulist(text: str, limit: int = MAX_CPU_IDS,
                  bound: str = "libvirt's limit") -> frozenset[int]:
    """libvirt's cpuset syntax: ranges, single CPUs and ``^N`` exclusions. Every id
    must be below ``limit`` (``bound`` says whose limit, for the message): each range
    is checked before it is expanded, and overlapping ranges are merged first, so
    the result never holds more than ``limit`` ids whatever the text says."""
    include: list[tuple[int, int]] = []
    exclude: list[tuple[int, int]] = []
    for part in text.split(","):
        target = exclude if part.startswith("^") else include
        part = part.removeprefix("^")
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if not match:
            raise ValueError(f"expected a CPU list like 0-3,8,^2, got {_shown(text)}")
        first = _whole(match.group(1))
        last = _whole(match.group(2)) if match.group(2) else first
        if last < first:
            raise ValueError(f"CPU range {_shown(part)} in {_shown(text)} runs backwards")
        if last >= limit:
            raise ValueError(f"CPU {last} in {_shown(text)} is out of range: CPU ids "
                             f"are 0..{limit - 1} ({bound})")
        target.append((first, last))
    excluded = _expand(exclude)
    return frozenset(cpu for cpu in _expand(include) if cpu not in excluded)


def _expand(ranges: list[tuple[int, int]]) -> set[int]:
    """The ids of inclusive ranges, merged first: "0-9,0-9,..." costs its text once."""
    ids: set[int] = set()
    end = -1  # the ranges are sorted: only what lies past the last end is new
    for first, last in sorted(ranges):
        if last > end:
            ids.update(range(max(first, end + 1), last + 1))
            end = last
    return ids


def format_cpulist(cpus) -> str:
    """Compact libvirt syntax: ``{0,1,2,3,8}`` → ``0-3,8``."""
    ordered = sorted(cpus)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def format_kib(kib: int) -> str:
    """A size in KiB in the largest unit that writes it whole: 2048 → ``2MiB``."""
    for unit, factor in (("TiB", 2**30), ("GiB", 2**20), ("MiB", 2**10)):
        if kib and kib % factor == 0:
            return f"{kib // factor}{unit}"
    return f"{kib}KiB"


def unit_bytes(unit: str) -> int | None:
    """libvirt's size units (virScaleInteger): case-insensitive; b/bytes, then
    k/m/g/t/p/e alone or with 'iB' for powers of 1024, with 'B' for powers of 1000."""
    return _UNIT_BYTES.get(unit.lower())


_UNIT_BYTES = {"b": 1, "byte": 1, "bytes": 1} | {
    prefix + suffix: (1000 if suffix == "b" else 1024) ** power
    for power, prefix in enumerate("kmgtpe", 1) for suffix in ("", "ib", "b")}
