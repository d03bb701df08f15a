"""Typed values of the trait language: integers, sizes with units, CPU lists, words.

Each ``parse_*`` takes the literal text and returns the value or raises ValueError
with a message that names what was expected; the resolver adds the source span.
CPU lists use libvirt's syntax (``0-3,8,^2``) in and out, always written compact.
"""

from __future__ import annotations

import re

import attrs

# libvirt's units (docs/formatdomain "memory"): powers of 1000 end in B, the rest
# are powers of 1024.
SIZE_UNITS = {
    "b": 1, "bytes": 1,
    "KB": 10**3, "k": 2**10, "K": 2**10, "KiB": 2**10,
    "MB": 10**6, "M": 2**20, "MiB": 2**20,
    "GB": 10**9, "G": 2**30, "GiB": 2**30,
    "TB": 10**12, "T": 2**40, "TiB": 2**40,
}
_SIZE = re.compile(r"([0-9]+)([A-Za-z]+)")


@attrs.frozen(order=True)
class Size:
    """A quantity of bytes that remembers how the author wrote it."""

    bytes: int
    text: str = attrs.field(eq=False, order=False)

    def __str__(self) -> str:
        return self.text

    @property
    def kib(self) -> int:
        return self.bytes // 1024


def parse_int(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a whole number, got {text!r}")
    return int(text)


def parse_size(text: str) -> Size:
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"expected a size with a unit like 1GiB or 2MiB, got {text!r}")
    number, unit = match.groups()
    if unit not in SIZE_UNITS:
        units = ", ".join(u for u in SIZE_UNITS if u not in ("b", "bytes"))
        raise ValueError(f"unknown unit {unit!r} in {text!r}; use one of {units}")
    return Size(int(number) * SIZE_UNITS[unit], text)


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
