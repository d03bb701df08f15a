"""The command line's parser (virtuned/cli.py): its help is laid out exactly as
argparse's own formatter lays it out, though it measures the terminal only then."""

import argparse

import pytest

from virtuned import cli


def commands(parser: argparse.ArgumentParser) -> dict:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


@pytest.mark.parametrize("columns", ["30", "60", "200"])
def test_the_help_is_argparse_own_at_any_width(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    ours, theirs = cli._parser(["compile"]), cli._parser(["compile"])
    for parser in (theirs, commands(theirs)["compile"]):
        parser.formatter_class = argparse.HelpFormatter
    assert ours.format_help() == theirs.format_help()
    assert ours.format_usage() == theirs.format_usage()
    assert (commands(ours)["compile"].format_help() ==
            commands(theirs)["compile"].format_help())
