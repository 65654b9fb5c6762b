"""`python -m controller ...` is the same as `runhands ...`."""

from controller.cli import main

raise SystemExit(main())
