"""Typed values (virtuned/values.py): one reader of sizes for the trait language and
for domain XML, whole numbers in ASCII digits only."""

import pytest

from virtuned import values


@pytest.mark.parametrize("text, size", [
    ("1GiB", 2**30), ("2M", 2**21), ("2MiB", 2**21), ("4KB", 4000), ("1gib", 2**30),
    ("3b", 3), ("1T", 2**40), ("1PiB", 2**50)])
def test_sizes_are_read_in_libvirts_units(text, size):
    assert values.parse_size(text).bytes == size
    assert str(values.parse_size(text)) == text


@pytest.mark.parametrize("text, message", [
    ("1Gi", "unknown unit 'Gi' in '1Gi'; use one of KB, k, K, KiB, MB, M, MiB, GB, G, "
            "GiB, TB, T, TiB"),
    ("GiB", "expected a size with a unit like 1GiB or 2MiB, got 'GiB'"),
    ("4", "expected a size with a unit like 1GiB or 2MiB, got '4'")])
def test_a_size_that_is_not_one_says_why(text, message):
    with pytest.raises(ValueError) as caught:
        values.parse_size(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("number, unit, kib", [
    ("4", "GiB", 4 * 2**20), ("2048", None, 2048), ("1", "M", 1024), ("1000", "KB", 976),
    ("1", "mib", 1024)])
def test_domain_xml_sizes_in_kib(number, unit, kib):
    assert values.kib(number, unit) == kib


@pytest.mark.parametrize("number, unit, message", [
    ("²", "KiB", "expected a whole number, got '²'"), ("1.5", "GiB",
                                                       "expected a whole number, got '1.5'"),
    ("4", "GiBs", "unknown unit 'GiBs'")])
def test_domain_xml_sizes_libvirt_refuses(number, unit, message):
    with pytest.raises(ValueError) as caught:
        values.kib(number, unit)
    assert str(caught.value) == message


def test_whole_numbers_are_ascii_digits():
    assert [values.is_whole(t) for t in ("0", "42", "²", "٤", "-1", "", "1 ")] == [
        True, True, False, False, False, False, False]
    with pytest.raises(ValueError, match="expected a whole number, got '²'"):
        values.parse_int("²")


@pytest.mark.parametrize("text, message", [
    ("0-999999999", "CPU 999999999 in '0-999999999' is out of range: CPU ids are "
                    "0..16383 (libvirt's limit)"),
    ("^0-99999", "CPU 99999 in '^0-99999' is out of range: CPU ids are 0..16383 "
                 "(libvirt's limit)"),
    ("1" * 31, f"'{'1' * 31}' is too large (more than 30 digits)"),
    ("3-1", "CPU range '3-1' in '3-1' runs backwards")])
def test_cpu_lists_are_bounded_before_they_are_expanded(text, message):
    with pytest.raises(ValueError) as caught:
        values.parse_cpulist(text)
    assert str(caught.value) == message


def test_a_cpu_list_has_its_own_bound_when_given():
    with pytest.raises(ValueError, match=r"CPU 16 in '0-16' is out of range: CPU ids are "
                                         r"0\.\.15 \(the host's\)"):
        values.parse_cpulist("0-16", 16, "the host's")
    assert values.parse_cpulist("0-15,^3", 16, "the host's") == set(range(16)) - {3}


def test_repeated_ranges_cost_the_text_once():
    """Each id is added once whatever the repetition: the list stays within its
    bound (ids below 16384) and its time stays in the text's length."""
    assert values.parse_cpulist(",".join(["0-16383"] * 20000)) == set(range(16384))
    assert values.parse_cpulist("0-7,2-9,^4-5,1") == {0, 1, 2, 3, 6, 7, 8, 9}


def test_numbers_of_absurd_length_are_refused_before_conversion():
    with pytest.raises(ValueError, match=r"\(100000 characters\) is too large"):
        values.parse_int("9" * 100000)
    with pytest.raises(ValueError, match="too large"):
        values.parse_size("9" * 5000 + "GiB")
