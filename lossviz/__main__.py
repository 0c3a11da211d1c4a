"""`python -m lossviz`: sweeps, offline landscapes and the result store's status (see lossviz.cli)."""

from lossviz.cli import main

if __name__ == "__main__":  # spawned pool workers import this module too: they must not run the CLI
    raise SystemExit(main())
