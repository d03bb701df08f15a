from virtuned.cli import console

raise SystemExit(console())
