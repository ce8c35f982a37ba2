"""`python -m oort_lib ...` is `oort-sync ...`; the Windows scheduled task runs it with
pythonw.exe, which opens no console window and gives the program no stdout or stderr."""

from __future__ import annotations

import sys


def _console_file(argv: list[str]):
    """Where a windowless run's output goes: console.log beside the log file, rewritten by
    each run, so what the last scheduled run printed can be read afterwards; the null
    device when that cannot be (raises nothing: main's failure path is not running yet)."""
    from oort_lib.state.config import resolve_paths

    home = None
    for index, arg in enumerate(argv):
        if arg.startswith("--home="):
            home = arg.split("=", 1)[1]
        elif arg == "--home" and index + 1 < len(argv):
            home = argv[index + 1]
    try:
        target = resolve_paths(home).log_file.with_name("console.log")
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "w", encoding="utf-8")
    except Exception:  # noqa: BLE001 - a bad --home is the command's to say, and it will
        import os

        return open(os.devnull, "w", encoding="utf-8")


def main() -> int:
    """Run the CLI, giving it somewhere to write when it has no console (pythonw)."""
    if sys.stdout is None or sys.stderr is None:
        stream = _console_file(sys.argv[1:])
        sys.stdout = sys.stdout or stream
        sys.stderr = sys.stderr or stream
    from oort_lib.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
