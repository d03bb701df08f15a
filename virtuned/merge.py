"""The last stage: the edits of every trait, applied to the domain tree.

Emitters never touch XML: they read the input tree and return edits. ``apply``
checks the edits against each other and against the input (two traits setting one
attribute to different values, or a trait contradicting a value the input states, is
a conflict naming both places) and only then changes the tree, so a failed compile
leaves nothing half-written.
"""

from __future__ import annotations

import functools
import re

from lxml import etree

from virtuned.diagnostics import Diagnostic, Related, Span, error
from virtuned.domain import (Inserter, MixedContent, copy_of, detach, element_span,
                             first_child, indent_subtree, indent_unit, path_of)
from virtuned.emit.edits import Add, E, Ensure, Remove, SetAttr, SetText, conflict
from virtuned.frozen import frozen
from virtuned.resolve.model import Origin


@frozen
class Change:
    """One change made to the domain, for ``explain``: where, old → new, and why."""

    path: str  # e.g. /domain/devices/video[2] or /domain/os/type/@machine
    old: str | None  # None: added
    new: str | None  # None: removed (--override: an input element the traits replace)
    origin: Origin
    overridden: bool = False  # the input stated ``old``; --override let the trait win


def apply(tree, edits, filename: str, warnings: list | None = None,
          override: bool = False) -> list[tuple]:
    """Apply ``edits`` to ``tree`` in place, or raise a conflict without changing it.

    A preference whose edits clash with the input or with another trait is dropped as
    a whole (never half-applied), with a warning appended to ``warnings``. With
    ``override``, a required trait replaces a value the input states (``overridden``
    lists each) instead of conflicting with it, and removes what it takes away.
    Returns what was done, as ``(element, edit, the input's value)``: the values set,
    then the elements added, the values ensured and what was removed.
    """
    done, adds, ensures, removes = _settle(edits, filename, warnings, override)
    removed = _removed(tree, removes) if removes else ()  # the places the input has
    for element, edit, _ in done:
        if type(edit) is SetAttr:
            element.set(edit.name, edit.value)
        else:
            element.text = edit.value
    if adds or ensures:
        done += _add(tree.getroot(), adds, ensures, filename)
    for edit in removes:
        _take_out(edit.element)
    done += removed
    return done


def _add(root, adds, ensures, filename: str) -> list[tuple]:
    """Insert the additions, then set the ensured values (on elements made for them
    when the input lacks them); what was done, as ``apply`` lists it."""
    unit = indent_unit(root)
    inserter = Inserter(unit)
    done: list[tuple] = []
    parents: dict[str, object] = {}  # a path from the root → its element
    for edit in adds:
        parent, spec, missing = edit.parent, edit.spec, ()
        if type(parent) is str:
            parent = parents.get(edit.parent)
            if parent is None:
                parent, missing = _existing(root, edit.parent)
                if missing and spec.tag[:1] == "{":  # its prefix is declared on it
                    parent, missing = _ensure(root, edit.parent, inserter), ()
                # The elements the path lacks are added with the spec, around it.
                for step in reversed(missing):
                    spec = _around(step, spec)
        level = inserter.depth(parent) + 1
        # A copy of the spec's element as made (and indented) once for its level.
        element = copy_of((spec, unit, level), lambda: _prototype(spec, unit, level))
        try:
            inserter.insert(parent, element, indented=True)
        except MixedContent as exc:
            raise error(element_span(exc.parent, filename),
                        f"'{edit.origin.label}' needs a <{exc.child_tag}> inside "
                        f"<{exc.parent.tag}>, which holds text instead",
                        hint=f"libvirt expects elements, not text, in <{exc.parent.tag}>"
                        ) from None
        for _ in missing:
            parent, element = element, element[0]
        if type(edit.parent) is str:
            parents[edit.parent] = parent
        done.append((element, edit, None))
    for edit in ensures:
        element = parents.get(edit.path)
        if element is None:
            element = parents[edit.path] = _ensure(root, edit.path, inserter)
        element.set(edit.name, edit.value)
        done.append((element, edit, None))
    return done


@frozen
class Removed:
    """What a ``Remove`` took away, as the input had it (its place is gone)."""

    path: str  # as explain names places (lxml's getpath)
    text: str
    location: str  # as warnings name places (domain.path_of: disk[1])


def _removed(tree, removes) -> list[tuple]:
    """What ``removes`` will take away, each as ``(element, edit, Removed)``, read
    before the tree changes: the places are the input's."""
    return [(edit.element, edit, Removed(tree.getpath(edit.element), _text(edit.element),
                                         path_of(edit.element)))
            for edit in removes]


def _take_out(element) -> None:
    """Remove ``element`` with the indentation before it, and a parent it leaves
    empty (an empty <cputune>)."""
    parent = element.getparent()
    detach(element)
    if len(parent) == 0 and not parent.attrib and not (parent.text or "").strip() \
            and parent.getparent() is not None:
        detach(parent)


def _text(element) -> str:
    return re.sub(r">\s+<", "><", etree.tostring(element, encoding="unicode",
                                                 with_tail=False))


@functools.lru_cache(maxsize=1024)
def _around(tag: str, spec: E) -> E:
    return E(tag, (), (spec,))


def _prototype(spec: E, unit: str, level: int):
    """A new element of ``spec``, indented inside for depth ``level``."""
    element = spec.build()
    indent_subtree(element, unit, level)
    return element


def overridden(done, filename: str) -> list[Diagnostic]:
    """A warning for each value of the input that ``apply(override=True)`` replaced:
    the user sees every value the traits won over."""
    found = [Diagnostic("warning", f"'{edit.origin.label}' overrides the input: "
                        + _replaced(edit, old),
                        edit.origin.span or element_span(element, filename),
                        (Related(element_span(element, filename), "the input had it here"),))
             for element, edit, old in done
             if old is not None and _overrides(edit, old)]  # additions have no old
    return sorted(found, key=lambda d: (d.span.file, d.span.line, d.span.col)) \
        if len(found) > 1 else found


def _replaced(edit, old) -> str:
    if type(edit) is Remove:
        return f"{old.location} was {old.text}, now removed"
    return f"{_location(edit)} was '{old}', now '{edit.value}'"


def _overrides(edit, old) -> bool:
    """Whether an applied edit replaced a value the input states, which only
    ``override`` lets a trait do (a completion or a preference never does)."""
    if type(edit) is Remove:
        return True
    return old is not None and old != getattr(edit, "replaces", None) and \
        type(edit) in (SetAttr, SetText) and edit.origin.strength == "require"


def describe(tree, done) -> list[Change]:
    """The Changes of ``apply``'s result, for ``explain`` (paths are computed only
    when asked for: a plain compile does not need them)."""
    return [_change(tree, element, edit, old) for element, edit, old in done]


def _change(tree, element, edit, old) -> Change:
    if type(edit) is Remove:
        return Change(old.path, old.text, None, edit.origin, True)
    path = tree.getpath(element)
    if isinstance(edit, (SetAttr, Ensure)):
        return Change(f"{path}/@{edit.name}", old, edit.value, edit.origin,
                      _overrides(edit, old))
    if isinstance(edit, SetText):
        return Change(f"{path}/text()", old, edit.value, edit.origin, _overrides(edit, old))
    return Change(path, None, _text(element), edit.origin)


class _Clash(Exception):
    """Two edits (or an edit and the input) disagree; ``other`` is None for the input."""

    def __init__(self, problem, origin: Origin, other: Origin | None):
        super().__init__(str(problem))
        self.problem, self.origin, self.other = problem, origin, other


def _settle(edits, filename: str, warnings: list | None, override: bool):
    """The edits that can be applied together, as ``_sorted_out`` gives them: required
    clashes raise, a clashing preference is dropped with all of its edits and the
    rest is settled again."""
    while True:
        try:
            return _sorted_out(edits, filename, override)
        except _Clash as clash:
            default = next((o for o in (clash.origin, clash.other)
                            if o is not None and o.strength == "default"), None)
            if default is not None:  # a completion only fills: it gives way silently
                edits = [e for e in edits if e.origin is not default]
                continue
            loser = next((o for o in (clash.origin, clash.other) if o is not None and o.soft),
                         None)
            if loser is None or warnings is None:
                raise clash.problem from None
            reason = clash.problem.diagnostics[0].message
            warnings.append(Diagnostic("warning", f"preference '{loser.label}' dropped: "
                                       f"{reason}", loser.span or Span("<input>", 1, 1)))
            edits = [e for e in edits if e.origin is not loser]


def _sorted_out(edits, filename: str, override: bool):
    """One pass over ``edits``, which sorts them by what ``apply`` does with them: the
    values that change, once each, as ``(element, edit, the input's value)``; the
    additions, one of each thing; the ensured values; the removals, once each.
    Conflicts raise: the values' first, in the edits' order (with ``override``, not
    a required trait's with the input), then the additions', then the removals'."""
    changes, adds, ensures, removes = [], [], [], []
    chosen: dict[tuple, object] = {}  # (element or path, name) → the first edit of it
    for edit in edits:
        kind = type(edit)
        if kind is SetAttr:
            element = edit.element
            key, current = (element, edit.name), element.get(edit.name)
        elif kind is Add:
            adds.append(edit)
            continue
        elif kind is Ensure:
            key, current = (edit.path, edit.name), None  # not in the input
        elif kind is SetText:
            element = edit.element
            key, current = (element, None), (element.text or "").strip() or None
        else:
            removes.append(edit)
            continue
        value = edit.value
        if current is not None and current != value and current != getattr(
                edit, "replaces", None) and not (override and edit.origin.strength ==
                                                 "require"):
            raise _Clash(_against_input(edit, current, filename), edit.origin, None)
        first = chosen.setdefault(key, edit)
        if first is edit:
            if current != value:
                if kind is Ensure:
                    ensures.append(edit)
                else:
                    changes.append((element, edit, current))
        elif first.value != value:
            what = _location(edit)
            raise _Clash(conflict(edit.origin, f"{what} = '{value}'", first.origin.span,
                                  f"'{first.origin.label}' sets {what} = '{first.value}'"),
                         edit.origin, first.origin)
    if len(adds) > 1:
        adds = _dedupe_additions(adds)
    if removes:  # only with --override
        removes = _removals(removes, chosen.values())
    return changes, adds, ensures, removes


def _against_input(edit, current: str, filename: str):
    what = _location(edit)
    return conflict(edit.origin, f"{what} = '{edit.value}'",
                    element_span(edit.element, filename),
                    f"the input states {what} = '{current}'",
                    hint="a trait never overrides what the input states: "
                         "change the input, or drop the trait")


def _removals(removes: list[Remove], values) -> list[Remove]:
    """Each element removed once; one that another edit sets a value on is a
    conflict (what to keep is not clear)."""
    removed: dict = {}
    for edit in removes:  # the first trait that removes it is named
        removed.setdefault(edit.element, edit)
    for edit in values:
        other = removed.get(getattr(edit, "element", None))
        if other is not None:
            what = _location(edit)
            raise _Clash(conflict(edit.origin, f"{what} = '{edit.value}'", other.origin.span,
                                  f"'{other.origin.label}' removes {path_of(edit.element)}"),
                         edit.origin, other.origin)
    return list(removed.values())


def _location(edit) -> str:
    """Where an edit changes the domain, as an XPath for messages."""
    if isinstance(edit, Ensure):
        return f"/domain/{edit.path}/@{edit.name}"
    if isinstance(edit, SetAttr):
        return f"{path_of(edit.element)}/@{edit.name}"
    return path_of(edit.element)


def _dedupe_additions(adds: list[Add]) -> list[Add]:
    """Additions of one thing (same parent, same identity) become one: equal ones,
    or ones that only say more of it (a disk's <driver> with its cache mode from one
    trait and its I/O thread from another) are united; a value they disagree on is a
    conflict."""
    by_identity: dict[tuple, int] = {}  # (parent, identity) → its place in result
    result: list[Add] = []
    for add in adds:
        if add.identity is None:
            result.append(add)
            continue
        place = by_identity.setdefault((add.parent, add.identity), len(result))
        if place == len(result):  # the first of its kind
            result.append(add)
            continue
        other = result[place]
        if other.spec == add.spec:
            continue
        united = _united(other.spec, add.spec)
        if united is None:
            raise _Clash(conflict(add.origin, f"a <{add.spec.tag}> {add.identity}",
                                  other.origin.span,
                                  f"'{other.origin.label}' adds a different one"),
                         add.origin, other.origin)
        result[place] = other._replace(spec=united)
    return result


def _united(one: E, other: E) -> E | None:
    """One element saying all that two say of it, or None if they disagree: the
    same tag and text, no attribute with two values, and children from one of them
    (or the same in both)."""
    if one.tag != other.tag or one.text != other.text:
        return None
    if one.children and other.children and one.children != other.children:
        return None
    attributes = dict(one.attrib)
    for name, value in other.attrib:
        if attributes.setdefault(name, value) != value:
            return None
    return E(one.tag, tuple(attributes.items()), one.children or other.children, one.text)


def _existing(root, path: str):
    """The deepest element of ``path`` (from the root) that exists, and the steps
    below it that do not."""
    if "/" not in path:  # the usual case: a child of the root, or the root itself
        if not path:
            return root, ()
        found = first_child(root, path)
        return (found, ()) if found is not None else (root, (path,))
    node = root
    steps = [step for step in path.split("/") if step]
    for i, step in enumerate(steps):
        found = next(node.iterchildren(step), None)
        if found is None:
            return node, tuple(steps[i:])
        node = found
    return node, ()


def _ensure(root, path: str, inserter: Inserter):
    """The element at ``path``, created (with any missing elements above it)."""
    node, missing = _existing(root, path)
    for step in missing:
        found = etree.Element(step)
        inserter.insert(node, found)
        node = found
    return node
