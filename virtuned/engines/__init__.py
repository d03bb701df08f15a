"""virtuned inside the engines that define VMs at scale: a KubeVirt hook sidecar
(kubevirt.py) and an oVirt/VDSM ``before_vm_start`` hook (vdsm.py).

Both read the same three things from the engine's own metadata (a VMI's
annotations, a VM's custom property): profile names, trait text and param values.
This module turns those texts into a compile request whose diagnostics name the
metadata they came from (``virtuned.io/traits:1:5: error: ...``), and compiles it.
"""

from __future__ import annotations

import json

from virtuned import api
from virtuned.diagnostics import OptionNames, Sources, Span, did_you_mean, error
from virtuned.frozen import frozen
from virtuned.resolve.profiles import ANY_VERSION, Library, load_library_file, search_path


@frozen
class Text:
    """A piece of metadata: its text, the name diagnostics give it, and where the
    text starts in what that name shows (a field of a one-line property starts at a
    column past 1)."""

    name: str
    text: str
    col: int = 1  # the column of the text's first character on its first line

    def span(self, offset: int) -> Span:
        """Where the character at ``offset`` of the text is."""
        line = self.text.count("\n", 0, offset) + 1
        start = self.text.rfind("\n", 0, offset) + 1
        col = offset - start + 1 + (self.col - 1 if line == 1 else 0)
        return Span(self.name, line, col)


@frozen
class HookRequest:
    """What a VM asks of virtuned, ready for ``virtuned.compile``."""

    profiles: tuple  # (name, Span) pairs, in the order given
    traits: Text | None
    settings: tuple[tuple[str, str], ...]
    option_names: OptionNames


def profile_names(given: Text) -> tuple[tuple[str, Span], ...]:
    """``nfv, site-nfv``: library profile names, each with where it is written. A
    name only: metadata a VM's owner writes never makes the hook read a file."""
    names, offset = [], 0
    for item in given.text.split(","):
        name = item.strip()
        where = given.span(offset + (item.index(name) if name else len(item)))
        if not name:
            raise error(where, "an empty profile name",
                        hint="profiles are separated by single commas: nfv,site-nfv")
        if name.endswith(".vt") or not _is_word(name):  # no path, no file name
            raise error(where, f"{name[:60]!r} is not a profile name",
                        hint="name profiles of the library or the mounted search path; "
                             "files are never read from here")
        names.append((name, where))
        offset += len(item) + 1
    return tuple(names)


def _is_word(name: str) -> bool:
    # The trait language's WORD: what a profile header can name.
    return (name[0].isascii() and (name[0].isalpha() or name[0] == "_")
            and all(c.isascii() and (c.isalnum() or c in "_.+-") for c in name))


def params(given: Text) -> tuple[tuple[tuple[str, str], ...], "ParamNames"]:
    """``{"queues": 4}``: a flat JSON object of param values, as ``--set`` takes
    them (``NAME`` or ``PROFILE.NAME``), and the names diagnostics about them use
    (each value's place)."""
    members = _json_members(given)
    return (tuple((key, text) for key, text, _ in members),
            ParamNames(metadata=given.name,
                       places=tuple((key, given.span(at)) for key, _, at in members)))


def _json_members(given: Text) -> list[tuple[str, str, int]]:
    """(key, value as --set text, offset of the value) of a flat JSON object, read
    with json's own scanners so a mistake is reported where it is."""
    text, decoder = given.text, json.JSONDecoder()
    members, seen = [], set()

    def fail(offset: int, message: str):
        return error(given.span(offset), message,
                     hint='a JSON object of param values: {"queues": 4, "nfv.node": 1}')

    at = _skip(text, 0)
    if not text.startswith("{", at):
        raise fail(at, "expected a JSON object ('{')")
    at = _skip(text, at + 1)
    if text.startswith("}", at):
        return _after(text, at + 1, members, fail)
    while True:
        if not text.startswith('"', at):
            raise fail(at, "expected a param name in double quotes")
        try:
            key, at_colon = json.decoder.scanstring(text, at + 1)
        except ValueError as exc:
            raise fail(at, f"a bad param name: {exc.msg}") from None
        if key in seen:
            raise fail(at, f"param '{key}' is given twice")
        seen.add(key)
        colon = _skip(text, at_colon)
        if not text.startswith(":", colon):
            raise fail(colon, "expected ':' after the param name")
        start = _skip(text, colon + 1)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError as exc:
            raise fail(start, f"param '{key}': not a JSON value ({exc.msg})") from None
        if isinstance(value, (dict, list)) or value is None:
            raise fail(start, f"param '{key}': expected a string, number or boolean, "
                              f"got {text[start:end][:40]}")
        members.append((key, param_text(value), start))
        at = _skip(text, end)
        if text.startswith("}", at):
            return _after(text, at + 1, members, fail)
        if not text.startswith(",", at):
            raise fail(at, "expected ',' or '}'")
        at = _skip(text, at + 1)


def _after(text, at, members, fail):
    rest = _skip(text, at)
    if rest < len(text):
        raise fail(rest, "unexpected text after the JSON object")
    return members


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def param_text(value) -> str:
    """A JSON value as ``--set NAME=VALUE`` gives it: text, whatever its JSON type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@frozen
class ParamNames(OptionNames):
    """Diagnostics about a param name or value point into the metadata that gave it
    (the caret under the value), instead of at a ``--set`` option."""

    metadata: str = ""  # the name of the metadata that gave the params
    places: tuple = ()  # (key, Span of its value)

    def name(self, option: str, key: str | None = None) -> str:
        if option == "settings" and key is not None:
            return f'"{key}"'  # as the JSON object names it
        return super().name(option, key)

    def given(self, option: str, value: str, key: str | None = None) -> str:
        if option == "settings" and key is not None:
            return f"{self.metadata} {{\"{key}\": {value}}}"
        return super().given(option, value, key)

    def span(self, option: str, value: str, key: str | None = None) -> Span:
        if option == "settings":
            for place_key, where in self.places:
                if place_key == key:
                    return where
        return super().span(option, value, key)


def compile_request(domain_xml: bytes, request: HookRequest, *, domain_name: str,
                    profile_path=(), sources: Sources | None = None):
    """Compile what the VM asks onto its domain: profiles from the library and the
    search path (a mounted directory), its trait text, its params. No host is
    known here, so placement traits only say what they need: the engine pins."""
    library = Library(search_path(tuple(profile_path)))
    files = []
    for name, where in request.profiles:
        path = library.find(name, ANY_VERSION)
        if path is None:
            raise error(where, f"no profile '{name}' on the search path",
                        hint=did_you_mean(name, library.names()) or
                        f"the library has: {', '.join(library.names())}")
        files.append(load_library_file(path))
    if request.traits is not None:
        files.append(api.TraitSource(request.traits.name, _placed(request.traits)))
    return api.compile(domain_xml, sources=tuple(files), settings=request.settings,
                       profile_path=tuple(profile_path), domain_name=domain_name,
                       diagnostics_sources=sources, option_names=request.option_names)


def _placed(traits: Text) -> str:
    """Trait text whose first line starts at its column in the metadata (spaces
    before it), so the resolver's columns are the metadata's own."""
    return " " * (traits.col - 1) + traits.text

