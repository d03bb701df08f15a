"""The one way virtuned declares its immutable data: ``@frozen`` is ``attrs.frozen``
(same options) with one ``__repr__`` shared by every class.

attrs writes each class's methods as source and compiles it when the class is
defined, and a command-line run defines about a hundred classes before it does any
work: the per-class ``__repr__`` is a third of that code. The shared one shows the
same text as attrs' own (``Span(file='a.vt', line=1, col=1, ...)``, fields declared
with ``repr=False`` left out), so messages and test failures read as before.
"""

from __future__ import annotations

import attrs


def frozen(cls=None, /, **options):
    """``attrs.frozen(cls, **options)``, with the shared ``__repr__``."""
    def declare(cls):
        declared = attrs.frozen(cls, repr=False, **options)
        declared.__repr__ = _repr
        return declared

    return declare if cls is None else declare(cls)


def _repr(self) -> str:
    shown = ", ".join(f"{field.name}={getattr(self, field.name)!r}"
                      for field in attrs.fields(type(self)) if field.repr)
    return f"{type(self).__qualname__.rsplit('>.', 1)[-1]}({shown})"
