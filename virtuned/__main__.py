from virtuned.cli import main

raise SystemExit(main())
