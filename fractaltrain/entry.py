"""The program's entry point: Ctrl-C and the environment, handled before anything heavy is imported.

``fractaltrain`` (the console script) and ``python -m fractaltrain`` both start
in :func:`main`.  This module imports nothing but the standard library, so its
Ctrl-C handler is in place a few milliseconds after the interpreter starts,
before typer, numpy or numba load (which take most of a second, and which a
KeyboardInterrupt interrupts with a long traceback, or, inside numba's
compiler or threads, with an abort).

Ctrl-C is handled in two ways.  Outside a command's body (importing, parsing,
shutting down) nothing has been written yet or everything is written, so the
handler prints one line and ends the process at once with exit code 130.
While a command runs (:func:`interruptible`, entered by the CLI's error layer)
Ctrl-C raises KeyboardInterrupt as usual, so ``finally`` blocks remove partial
files and the error layer reports which tiles are kept; the process then ends
with code 130 without the interpreter's finalisation, in which half-stopped
kernel threads have been seen to abort.

``NUMBA_NUM_THREADS`` is read by numba when it is imported, and a bad value
there is an exception deep inside numba; it is checked here, before numba can
load, so it is one line naming the variable and what is allowed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

_installed = False  # our SIGINT handler is in place (not in-process callers such as tests)
_raise = False  # Ctrl-C raises KeyboardInterrupt (a command body runs) instead of exiting at once
_reported = False  # an "interrupted" line was printed already


def _write_stderr(line: str) -> None:
    """Write one line to file descriptor 2 directly: safe inside a signal handler, whatever sys.stderr is."""
    with contextlib.suppress(OSError):
        os.write(2, line.encode() + b"\n")


def exit_interrupted(message: str | None = "interrupted") -> None:
    """Flush what was printed, say ``message`` once, and end the process with 130 (128 + SIGINT)."""
    global _reported
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if message and not _reported:
        _reported = True
        _write_stderr(message)
    os._exit(130)


def _on_sigint(signum, frame) -> None:
    if _raise:
        raise KeyboardInterrupt
    exit_interrupted()


def install_interrupt_handler() -> None:
    """Make Ctrl-C end the program with one line and exit code 130 from now on."""
    global _installed
    signal.signal(signal.SIGINT, _on_sigint)
    _installed = True


def note_interrupted() -> None:
    """Record that the error layer has printed its own line for a Ctrl-C (so no second one is printed)."""
    global _reported
    _reported = True


@contextlib.contextmanager
def interruptible():
    """While the block runs, Ctrl-C raises KeyboardInterrupt, so cleanup code runs before the exit."""
    global _raise
    old = _raise
    _raise = True
    try:
        yield
    finally:
        _raise = old


def numba_threads_problem(environ=os.environ) -> str | None:
    """The error line for a ``NUMBA_NUM_THREADS`` that numba would refuse or misread, else None.

    numba raises a ValueError deep in its import for 0 or a negative number and
    warns (then ignores the variable) for text; both are bad input, not bugs.
    Unset means one thread per core.  Larger than the core count is allowed, as
    numba allows it.
    """
    text = environ.get("NUMBA_NUM_THREADS")
    if text is None:
        return None
    value = text.strip()
    if value.isascii() and value.isdigit() and len(value) <= 6 and int(value) >= 1:
        return None
    shown = text if len(text) <= 20 and text.isprintable() else repr(text[:20]) + "..."
    return (f"NUMBA_NUM_THREADS={shown}: must be a whole number of threads >= 1 (at most 999999), or unset "
            f"for one per core ({os.cpu_count() or 1} here)")


def main() -> None:
    """Console entry point: Ctrl-C handler and environment check first, then the command line."""
    install_interrupt_handler()
    problem = numba_threads_problem()
    if problem:
        _write_stderr(f"error: {problem}")
        sys.exit(2)
    try:
        from fractaltrain.cli import app

        app(prog_name="fractaltrain")
    except SystemExit as exc:
        if exc.code == 130:
            exit_interrupted(None)  # the error layer has said what was kept
        raise
    except KeyboardInterrupt:
        exit_interrupted()
