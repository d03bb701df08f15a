from virtuned import startup

startup.begin()  # first: importing the CLI (argparse, gettext) compiles patterns

from virtuned.cli import console  # noqa: E402

raise SystemExit(console())
