"""Edits: what emitters return and merge applies. An edit says what to change and
which trait asked (its ``Origin``); it never changes anything itself.

``E`` is an element to add, built with ``el``; ``SetAttr``, ``SetText`` and
``Ensure`` change a value; ``Add`` adds an element; ``Remove`` (--override only)
takes one of the input's away. ``conflict`` is the one way a
disagreement is reported, naming both sides.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from lxml import etree

from virtuned.diagnostics import ExitCode, Related, Span, error
from virtuned.resolve.model import Origin


class E(NamedTuple):
    """An element to add: tag, attributes (in output order), children, text. (A
    NamedTuple: specs are keys of the caches of built elements, and a tuple is
    hashed and compared in C, a frozen attrs class through a Python call.)"""

    tag: str
    attrib: tuple[tuple[str, str], ...] = ()
    children: tuple[E, ...] = ()
    text: str | None = None

    def build(self):
        """A new lxml element (parsed from cached text: much faster than building it
        node by node, and specs repeat from compile to compile)."""
        return etree.fromstring(_serialized(self))

    # The two lookups the identity table needs, so a spec is identified without
    # building it: get an attribute, find a child by a simple path.
    def get(self, name: str) -> str | None:
        return dict(self.attrib).get(name)

    def find(self, path: str) -> E | None:
        node = self
        for step in path.split("/"):
            node = next((c for c in node.children if c.tag == step), None)
            if node is None:
                return None
        return node


@functools.lru_cache(maxsize=1024)
def _serialized(spec: E) -> bytes:
    def build(node: E, parent=None):
        element = (etree.Element(node.tag, dict(node.attrib), nsmap=_nsmap(node.tag))
                   if parent is None
                   else etree.SubElement(parent, node.tag, dict(node.attrib)))
        element.text = node.text
        for child in node.children:
            build(child, element)
        return element

    return etree.tostring(build(spec))


# Prefixes for the namespaces traits write into <metadata>, as other tools write them.
PREFIXES = {"http://libosinfo.org/xmlns/libvirt/domain/1.0": "libosinfo"}


def _nsmap(tag: str) -> dict | None:
    namespace = tag[1:].partition("}")[0] if tag.startswith("{") else None
    return {PREFIXES[namespace]: namespace} if namespace in PREFIXES else None


@functools.lru_cache(maxsize=4096)
def el(tag: str, *children: E, text: str | None = None, **attrib: str) -> E:
    """Shorthand: ``el("model", type="qxl")``. Trailing underscores are dropped from
    attribute names so Python keywords can be used (``type_``). Cached: the same
    specs are asked for on every compile."""
    return E(tag, tuple((k.rstrip("_"), v) for k, v in attrib.items()), children, text)


# The edits are NamedTuples: a compile makes one for every change, and a tuple takes
# its fields in C (a frozen attrs class sets them one by one from Python, ~3k
# instructions an edit). Equal edits are equal in every field (an element by
# identity); nothing compares edits: merge keys them by what they change (an
# element and a name, a parent and an identity).
class SetAttr(NamedTuple):
    """Set attribute ``name`` of an element of the input tree (found by the trait,
    so the place a message names is the element's own: domain.path_of)."""

    element: Any  # an lxml element of the input tree
    name: str
    value: str
    origin: Origin
    # The input value this edit replaces on purpose (a disk's name); any other
    # existing value is a conflict.
    replaces: str | None = None


class SetText(NamedTuple):
    """Set the text of an element of the input tree."""

    element: Any
    value: str
    origin: Origin


class Add(NamedTuple):
    """Add ``spec`` under ``parent``: an element of the input tree, or a path from the
    root such as ``devices`` (missing elements on the way are created). ``identity``
    makes two additions of the same thing one: equal identity and spec merge, equal
    identity and a different spec conflict."""

    parent: Any
    spec: E
    origin: Origin
    identity: tuple | None = None


class Ensure(NamedTuple):
    """The element at ``path`` (from the root) has attribute ``name`` = ``value``;
    the element, absent from the input, is created. (For an element the input has,
    emitters use SetAttr, which checks what the input states.)"""

    path: str
    name: str
    value: str
    origin: Origin


class Remove(NamedTuple):
    """Remove an element of the input tree: only with --override, for what a trait
    replaces as a whole (a pin of a placement that no longer has it)."""

    element: Any
    origin: Origin


Edit = SetAttr | SetText | Add | Ensure | Remove


def conflict(origin: Origin, wants: str, other_span: Span | None, other: str, *,
             hint: str = "remove one of the two"):
    span = origin.span or other_span or Span("<input>", 1, 1)
    # With no place of its own (a command-line option), the diagnostic already sits
    # on the other side; a note there would only repeat it.
    related = (Related(other_span, other),) if other_span and origin.span else ()
    message = f"'{origin.label}' wants {wants}, but {other}"
    return error(span, message, related=related, exit_code=ExitCode.CONFLICT, hint=hint)
