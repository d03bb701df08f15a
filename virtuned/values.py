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
# Patterns are compiled when first used (re's own cache): a run needs few of them.
_SIZE = r"([0-9]+)([A-Za-z]+)"
_WHOLE = r"[0-9]+"  # ASCII digits only: str.isdigit() takes '²' too


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
    """Whether ``text`` is a whole number in ASCII digits."""
    return re.fullmatch(_WHOLE, text) is not None


def parse_int(text: str) -> int:
    if not is_whole(text):
        raise ValueError(f"expected a whole number, got {text!r}")
    return int(text)


def parse_size(text: str) -> Size:
    """A size with its unit, as the trait language writes it: ``1GiB``, ``2M``."""
    match = re.fullmatch(_SIZE, text)
    if not match:
        raise ValueError(f"expected a size with a unit like 1GiB or 2MiB, got {text!r}")
    number, unit = match.groups()
    factor = unit_bytes(unit)
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} in {text!r}; use one of {SHOWN_UNITS}")
    return Size(int(number) * factor, text)


def kib(number: str, unit: str | None) -> int:
    """A size as domain XML writes it, a number and a unit attribute (KiB when
    there is none), in KiB; ValueError for what libvirt would refuse."""
    factor = unit_bytes(unit or "KiB")
    if factor is None:
        raise ValueError(f"unknown unit {unit!r}")
    if not is_whole(number):
        raise ValueError(f"expected a whole number, got {number!r}")
    return int(number) * factor // 1024


def parse_cpulist(text: str) -> frozenset[int]:
    """libvirt's cpuset syntax: ranges, single CPUs and ``^N`` exclusions."""
    include: set[int] = set()
    exclude: set[int] = set()
    for part in text.split(","):
        target = exclude if part.startswith("^") else include
        part = part.removeprefix("^")
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if not match:
            raise ValueError(f"expected a CPU list like 0-3,8,^2, got {text!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise ValueError(f"CPU range {part!r} in {text!r} runs backwards")
        target.update(range(first, last + 1))
    return frozenset(include - exclude)


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
    unit = unit.lower()
    if unit in ("b", "byte", "bytes"):
        return 1
    power = "kmgtpe".find(unit[:1]) + 1 if unit else 0
    if not power or unit[1:] not in ("", "ib", "b"):
        return None
    return (1000 if unit[1:] == "b" else 1024) ** power
