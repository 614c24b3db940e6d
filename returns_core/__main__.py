"""`python -m returns_core`: the command line (see returns_core/cli.py)."""

from returns_core.cli import main

raise SystemExit(main())
