from virtuned.syntax import cache

cache.enable()  # a short-lived process: parsed profiles come from the disk cache

from virtuned.cli import main  # noqa: E402

raise SystemExit(main())
