"""Provenance: which compiler and which profiles made a domain, in its ``<metadata>``.

    <metadata>
      <virtuned:provenance xmlns:virtuned="https://virtuned.dev/xmlns/provenance/1"
                           compiler="0.1.0">
        <virtuned:profile name="nfv" version="1.2.0" sha256="..." source="..."/>
        <virtuned:traits source="&lt;trait 1&gt;" sha256="..."/>
      </virtuned:provenance>
    </metadata>

Other applications' metadata is left exactly as it is. A provenance element already
in the input is virtuned's own record of an earlier compile and is replaced, so
compiling an output again with the same profiles gives the same bytes.
"""

from __future__ import annotations

import functools

from lxml import etree

from virtuned.diagnostics import error
from virtuned.domain import (Inserter, MixedContent, append_child, copy_of, detach,
                             element_span, first_child, indent_subtree, indent_unit)
from virtuned.merge import Change
from virtuned.resolve.model import Origin

NAMESPACE = "https://virtuned.dev/xmlns/provenance/1"
_TAG = f"{{{NAMESPACE}}}provenance"


def stamp(tree, used_profiles, compiler_version: str, filename: str = "<domain>"):
    """Record ``used_profiles`` (resolve.UsedProfile) in the domain, if there are any;
    an input <metadata> that holds text is an input error (``filename``'s).

    Returns a function giving the change made (merge.Change), for ``explain``.
    """
    if not used_profiles:
        return lambda: []  # no traits: the input comes back as it was
    root = tree.getroot()
    unit = indent_unit(root)
    used_profiles = tuple(used_profiles)
    key = (_TAG, used_profiles, compiler_version, unit)
    metadata = first_child(root, "metadata")
    # The same profiles recur from compile to compile: the record is built once
    # (inside a <metadata> for a domain that has none), then copied.
    if metadata is None:
        metadata = copy_of(key + ("metadata",), lambda: _element(key, True))
        Inserter(unit).insert(root, metadata, indented=True)
        record = metadata[0]
    else:
        # A <metadata> has few children: reading their tags costs less than lxml's
        # search by a namespaced tag.
        for old in [child for child in metadata if child.tag == _TAG]:
            detach(old)
        record = copy_of(key, lambda: _element(key, False))
        try:
            append_child(metadata, record, unit, 1)  # <metadata> is the root's child
        except MixedContent:
            raise error(element_span(metadata, filename), "<metadata> holds text, and "
                        "virtuned records the profiles it used there",
                        hint="libvirt keeps only elements in <metadata>") from None

    def change():
        return [Change(tree.getpath(record), None, "virtuned provenance (compiler "
                       f"{compiler_version}, {len(used_profiles)} profile(s))",
                       Origin("provenance"))]

    return change


def _element(key, in_metadata: bool):
    """The record (in a new <metadata>), indented for its place: <metadata> is a
    child of the root."""
    _, used_profiles, compiler_version, unit = key
    element = etree.fromstring(_record(used_profiles, compiler_version))
    if in_metadata:
        metadata = etree.Element("metadata")
        metadata.append(element)
        element = metadata
    indent_subtree(element, unit, 1 if in_metadata else 2)
    return element


@functools.lru_cache(maxsize=256)
def _record(used_profiles, compiler_version: str) -> bytes:
    """The provenance element, serialized."""
    record = etree.Element(_TAG, {"compiler": compiler_version},
                           nsmap={"virtuned": NAMESPACE})
    for used in used_profiles:
        if used.version is None:  # a file of bare trait lines, or -t text
            etree.SubElement(record, f"{{{NAMESPACE}}}traits",
                             {"source": used.source, "sha256": used.sha256})
        else:
            etree.SubElement(record, f"{{{NAMESPACE}}}profile",
                             {"name": used.name, "version": used.version,
                              "sha256": used.sha256, "source": used.source})
    return etree.tostring(record)
