"""Every input is read with its cap (virtuned/inputs.py), never whole first: an
endless one (/dev/zero) ends at once with exit 2 naming the cap. The commands run in
a process whose memory is capped (tests/bounded.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.bounded import run_bounded
from tests.cli_run import run, write
from virtuned import api, inputs
from virtuned.diagnostics import VirtunedError

HINT = "hint: docs/security.md lists the limit of every input\n"


@pytest.mark.parametrize("argv, what", [
    (["compile", "/dev/zero"], "domain XML is larger than 10485760 bytes"),
    (["compile", "--host", "/dev/zero"], "host capabilities XML is larger than "
                                         "10485760 bytes"),
    (["compile", "--domcaps", "/dev/zero"], "domain capabilities XML is larger than "
                                            "10485760 bytes"),
    (["fit", "--hosts", "examples/hosts/two-node-smt.xml", "/dev/zero"],
     "host capabilities XML is larger than 10485760 bytes"),
    (["compile", "-p", "/dev/zero"], "profile is larger than 65536 bytes"),
    (["compile", "--lock", "/dev/zero"], "lock is larger than 1048576 bytes"),
    (["explain", "--lock", "/dev/zero"], "lock is larger than 1048576 bytes"),
    (["check", "/dev/zero"], "profile is larger than 65536 bytes"),
    (["fmt", "/dev/zero"], "profile is larger than 65536 bytes"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_an_endless_file_is_refused_at_its_cap(argv, what):
    code, out, err = run_bounded(argv)
    assert (code, out, err) == (2, "", f"/dev/zero:1:1: error: {what}, its limit\n{HINT}")


@pytest.mark.parametrize("argv, what", [
    (["compile", "-"], "domain XML is larger than 10485760 bytes"),
    (["fmt", "-"], "profile is larger than 65536 bytes"),
])
def test_endless_stdin_is_refused_at_its_cap(argv, what):
    with open("/dev/zero", "rb") as zero:
        code, out, err = run_bounded(argv, stdin=zero)
    assert (code, out, err) == (2, "", f"<stdin>:1:1: error: {what}, its limit\n{HINT}")


def test_a_profile_at_its_cap_is_read_and_one_byte_more_is_not(tmp_path):
    line = "# padding\n"
    body = "video qxl\n"
    text = body + line * ((inputs.TRAIT_BYTES - len(body)) // len(line))
    text += "#" * (inputs.TRAIT_BYTES - len(text) - 1) + "\n"
    write(tmp_path, {"at.vt": text, "over.vt": text + "\n"})
    assert len(text.encode()) == inputs.TRAIT_BYTES
    assert run(["compile", "-p", "./at.vt"], cwd=tmp_path)[0] == 0
    assert run(["compile", "-p", "./over.vt"], cwd=tmp_path) == (
        2, "", f"./over.vt:1:1: error: profile is larger than 65536 bytes, its limit\n"
               f"    video qxl\n    ^\n{HINT}")


def test_inline_trait_text_and_a_lock_have_their_caps_in_the_api():
    with pytest.raises(VirtunedError) as caught:
        api.compile(traits=["video qxl\n" + "#" * inputs.TRAIT_BYTES])
    assert str(caught.value) == ("<trait 1>:1:1: trait text is larger than 65536 bytes, "
                                 "its limit")
    with pytest.raises(VirtunedError) as caught:
        api.compile(lock=" " * (inputs.LOCK_BYTES + 1), lock_name="big.json")
    assert str(caught.value) == "big.json:1:1: lock is larger than 1048576 bytes, its limit"


def test_text_files_read_with_a_cap_keep_text_modes_newlines(tmp_path):
    (tmp_path / "crlf.vt").write_bytes(b"video qxl\r\nvideo virtio\rx\n")
    assert inputs.read_text(str(tmp_path / "crlf.vt"), "profile") == \
        "video qxl\nvideo virtio\nx\n"


def test_a_profile_that_is_not_utf8_is_an_input_error_for_fmt(tmp_path):
    (tmp_path / "bad.vt").write_bytes(b"video \xff\n")
    assert run(["fmt", "bad.vt"], cwd=tmp_path) == (
        2, "", "bad.vt: error: not UTF-8 text (invalid start byte)\n")


@pytest.mark.parametrize("argv, message", [
    (["--name", "a\x01b"],
     "--name a\\x01b: error: the name 'a\\x01b': control character \\x01 (U+0001) is "
     "not allowed"),
    (["--name", "a\x9bb"],
     "--name a\\x9bb: error: the name 'a\\x9bb': control character \\x9b (U+009B) is "
     "not allowed"),
    (["--set", "x=a\x7fb"],
     "--set x=a\\x7fb: error: the value 'a\\x7fb': control character \\x7f (U+007F) is "
     "not allowed"),
    (["--set", "x\x02=ab"],
     "--set x\\x02=ab: error: the param name 'x\\x02': control character \\x02 (U+0002) "
     "is not allowed"),
    (["-t", 'video qxl\nvideo "a\x00b"'],
     "<trait 1>:2:9: error: control character \\x00 (U+0000) in trait text is not "
     "allowed"),
])
def test_control_characters_in_names_and_values_are_refused(argv, message):
    assert run(["compile", *argv]) == (2, "", message + "\n")


def test_a_refused_trait_text_is_refused_again_and_a_checked_one_is_remembered():
    bad = 'video qxl\nvideo "a\x00b"'
    for _ in range(2):  # a text that fails is never remembered as checked
        with pytest.raises(VirtunedError) as caught:
            api.compile(traits=[bad])
        assert str(caught.value) == ("<trait 1>:2:9: control character \\x00 (U+0000) in "
                                     "trait text is not allowed")
    api.compile(traits=["video qxl"])
    assert api._CHECKED_TEXTS.get("video qxl") == len("video qxl") + 1
    assert api._CHECKED_TEXTS.get(bad) is None


def test_tabs_and_newlines_are_not_control_characters_here():
    assert run(["compile", "-t", "video qxl\r\n\tvideo virtio\n", "--name", "a b"])[0] == 0


@given(st.text(alphabet=st.characters(max_codepoint=0x2030, exclude_categories=()),
               max_size=24))
def test_the_ascii_fast_path_finds_what_the_pattern_finds(text):
    import re

    found = re.search(inputs._CONTROL, text)
    assert inputs.control_character(text) == (found.start() if found else None)
    assert inputs.escaped(text) == re.sub(inputs._CONTROL,
                                          lambda m: repr(m.group())[1:-1], text)
