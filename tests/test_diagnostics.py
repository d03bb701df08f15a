"""How diagnostics name a request's options: the CLI's flags or an HTTP request's
fields (virtuned/diagnostics.py, OptionNames)."""

from __future__ import annotations

import pytest

from virtuned.diagnostics import CLI_OPTIONS, HTTP_OPTIONS, Span


@pytest.mark.parametrize("option, key, value, cli, http", [
    ("reserved_cpus", None, "0-1", ("--reserved-cpus", "--reserved-cpus 0-1"),
     ("/reserved_cpus", "/reserved_cpus")),
    ("settings", "nfv.queues", "4", ("--set nfv.queues", "--set nfv.queues=4"),
     ("/params/nfv.queues", "/params/nfv.queues")),
    ("device_nodes", "3b:00.0", "1", ("--device-node 3b:00.0", "--device-node 3b:00.0=1"),
     ("/device_nodes/3b:00.0", "/device_nodes/3b:00.0")),
    ("settings", "a/b~c", "x", ("--set a/b~c", "--set a/b~c=x"),
     ("/params/a~1b~0c", "/params/a~1b~0c")),  # RFC 6901 escapes
])
def test_options_are_named_as_each_surface_spells_them(option, key, value, cli, http):
    assert (CLI_OPTIONS.name(option, key), CLI_OPTIONS.given(option, value, key)) == cli
    assert (HTTP_OPTIONS.name(option, key), HTTP_OPTIONS.given(option, value, key)) == http


def test_the_cli_places_a_diagnostic_on_the_option_and_http_on_the_body():
    assert CLI_OPTIONS.span("reserved_cpus", "0-1") == Span("--reserved-cpus 0-1", 1, 1)
    assert str(CLI_OPTIONS.span("reserved_cpus", "0-1")) == "--reserved-cpus 0-1"
    assert HTTP_OPTIONS.span("reserved_cpus", "0-1") == Span("<request>", 1, 1)
    # Only the body's place needs the message to say which field it is about.
    assert CLI_OPTIONS.lead("device_nodes", "3b:00.0") == ""
    assert HTTP_OPTIONS.lead("device_nodes", "3b:00.0") == "/device_nodes/3b:00.0: "
