#!/usr/bin/env python3
"""Entry script: `python oort_sync.py ...` is the same as the `oort-sync` command."""
import sys

from oort_lib.cli import main

if __name__ == "__main__":
    sys.exit(main())
