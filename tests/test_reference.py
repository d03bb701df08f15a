"""The vocabulary's reference is generated from the registry (virtuned/reference.py):
the docs that carry it are current, and `virtuned traits` says what every value
takes."""

import json

from tests.cli_run import run
from virtuned import reference


def test_the_generated_docs_are_current():
    """docs/language.md's vocabulary and README.md's trait table: rewrite them with
    `python -m virtuned.reference` when this fails."""
    assert reference.stale() == []


def test_a_stale_part_is_found_and_rewritten(tmp_path):
    for file, parts in reference.generated().items():
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        marked = "".join(reference._marked(name)[0] + "old\n" + reference._marked(name)[1]
                         for name, _ in parts)
        (tmp_path / file).write_text(f"# head\n{marked}tail\n")
    assert sorted(reference.stale(tmp_path)) == ["README.md", "docs/language.md"]
    assert sorted(reference.write(tmp_path)) == ["README.md", "docs/language.md"]
    assert reference.stale(tmp_path) == []
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# head\n<!-- generated: traits")
    assert "| `network queues COUNT` | virtio-net multiqueue: this many queue pairs on " \
           "every interface. |\n" in readme
    assert readme.endswith("<!-- end generated: traits -->\ntail\n")


def test_traits_lists_what_each_value_takes():
    code, out, err = run(["traits"])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("network queues COUNT")))
    assert lines[at:at + 4] == [
        "network queues COUNT                      v1  virtio-net multiqueue: this many "
        "queue pairs on every interface.",
        "    COUNT: a whole number from 1 to 256",
        "network queues auto                       v1  virtio-net multiqueue with one "
        "queue pair per vCPU (from <vcpu>).",
        "network ring size SIZE                    v1  The virtio ring size of every "
        "interface: 256, 512 or 1024."]


def test_traits_json_describes_the_slots():
    code, out, _ = run(["traits", "--json"])
    listing = {entry["name"]: entry for entry in json.loads(out)}
    assert listing["network ring size"]["slots"] == [
        {"name": "size", "type": "int", "takes": "one of 256, 512, 1024",
         "choices": ["256", "512", "1024"]}]
    assert listing["iothreads"]["slots"] == [
        {"name": "count", "type": "int", "takes": "a whole number from 1 to 256", "minimum": 1,
         "maximum": 256}]
    assert listing["video"]["signature"] == "video vga|cirrus|vmvga|qxl|virtio|bochs|ramfb|none"
    assert listing["video"]["module"] == "virtuned.vocab.video"


def test_every_example_ends_with_its_own_trait_and_compiles(tmp_path):
    """A trait's example is its own line last, after what it needs beside it; the
    docs show it and tests/vocab/test_vocabulary.py compiles it on both machines."""
    from virtuned import api
    from virtuned.resolve import registry
    from virtuned.resolve.traits import match_line
    from virtuned.syntax.parser import parse

    for definition in registry.all_traits():
        last = parse(definition.example.splitlines()[-1], "<example>").statements[-1]
        assert match_line(last, registry.all_traits()).phrase == definition.phrase
        assert api.compile(None, traits=(definition.example,)).xml.startswith("<domain")
