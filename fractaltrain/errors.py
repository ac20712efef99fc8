"""Errors a user can cause, safe output names and short descriptions of values.

Every failure a user can provoke (a bad config, a bad file, a full disk, a job
too large for the machine) is raised as one of the exceptions below, or as an
``OSError``, with a one-line message naming the thing and what is allowed.  The
CLI has a single place that turns them into ``error: ...`` and exit code 2
(:func:`fractaltrain.cli.common.guarded`, around every command).  Library messages name config keys and files,
never CLI flags; the CLI translates keys to its flags.

Output names.  Every file a job writes is ``OUT/NAME + suffix`` (or a fixed
sub-folder of ``OUT``), where NAME is one path component checked by
:func:`check_name`; :func:`output_file` is the only way outputs are named, so
no name can reach outside ``OUT`` and no suffix is ever swapped (``run.a``
writes ``run.a.png``, not ``run.png``).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

NAME_MAX = 100  # leaves room for the longest suffix within a 255-byte file name
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
NAME_HELP = "letters, digits, '_', '-' and '.' ('-' and '.' not first), at most 100 characters"


class InputError(ValueError):
    """Bad input: the message is one line that names the key, file or value and what is allowed.

    ``option`` is set when the message starts with ``option:`` and that key is an
    option of the caller (an override or a zoom setting) rather than a config
    key; the CLI then shows its own flag there.
    """

    def __init__(self, message: str, *, option: str | None = None):
        super().__init__(message)
        self.option = option


class ConfigError(InputError):
    """A config value is missing, of the wrong type or out of range (the message names its key)."""


class DataError(InputError):
    """A file could not be read as what it should be (damaged, wrong format)."""


class OutputError(InputError):
    """An output cannot be written as asked (a name clash with another job, a bad path)."""


class ResourceError(ConfigError):
    """A job needs more memory or work than the machine (or any sensible run) allows."""


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters, and cheap for any value.

    Containers are described by type and length rather than formatted, so a
    YAML alias bomb or a megabyte-long string can never make an error message
    expensive or long.
    """
    if isinstance(value, (list, tuple, dict, set)):
        text = _bounded_repr(value, limit + 1)
    elif isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    else:
        try:
            text = repr(value)
        except Exception:  # pragma: no cover - a repr that fails
            text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def key_text(key: Any, limit: int = 40) -> str:
    """A mapping key as it appears in a dotted path: the string itself (cut), or a short repr."""
    if isinstance(key, str):
        text = "".join(c if c.isprintable() else "?" for c in key[: limit + 1])
        return text if len(text) <= limit else text[: limit - 3] + "..."
    return short(key, limit)


def _bounded_repr(value: Any, budget: int) -> str:
    """A repr that stops after ``budget`` characters (walks only what it prints)."""
    out: list[str] = []
    used = 0

    def emit(s: str) -> bool:
        nonlocal used
        out.append(s)
        used += len(s)
        return used < budget

    def walk(v: Any, depth: int) -> bool:
        if depth > 20:
            return emit("...")
        if isinstance(v, dict):
            if not emit("{"):
                return False
            for i, (k, x) in enumerate(v.items()):
                if (i and not emit(", ")) or not walk(k, depth + 1) or not emit(": ") or not walk(x, depth + 1):
                    return False
            return emit("}")
        if isinstance(v, (list, tuple, set)):
            if not emit("["):
                return False
            for i, x in enumerate(v):
                if (i and not emit(", ")) or not walk(x, depth + 1):
                    return False
            return emit("]")
        return emit(short(v, budget))

    walk(value, 0)
    return "".join(out)


def check_name(name: Any, key: str = "name") -> str:
    """A job name: one path component that is safe as a file-name prefix.

    A non-string (YAML reads ``name: 123`` as an int and ``name: yes`` as a bool)
    is named as such first: "expected letters and digits, got 123" would read as
    if 123 were not digits.
    """
    if not isinstance(name, str):
        got = "null (an empty value)" if name is None else f"{type(name).__name__} {short(name)}"
        raise ConfigError(f"{key}: must be a string ({NAME_HELP}); got {got}"
                          + (" (quote it in YAML)" if isinstance(name, (int, float)) else ""))
    if len(name) > NAME_MAX or NAME_RE.fullmatch(name) is None:
        raise ConfigError(f"{key}: expected {NAME_HELP}; got {short(name)}")
    return name


def output_file(folder: str | Path, name: str, suffix: str) -> Path:
    """``folder / (name + suffix)``: the only way an output file is named."""
    check_name(name)
    if "/" in suffix or "\\" in suffix or "\0" in suffix:
        raise ValueError(f"bad output suffix {suffix!r}")
    return Path(folder) / (name + suffix)


def describe_os_error(exc: OSError) -> str:
    """One line: the file and what went wrong, with a hint for the common cases."""
    parts = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(parts)
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = {
        errno.ENOSPC: "free some space or choose another --out",
        errno.EDQUOT: "free some space or choose another --out",
        errno.EROFS: "choose a writable folder",
        errno.EACCES: "choose a folder you can write to",
        errno.EPERM: "choose a folder you can write to",
        errno.ENAMETOOLONG: "use a shorter path or name",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EEXIST: "a file is in the way of a folder",
    }.get(exc.errno)
    text = f"{where}: {what}" if where else what
    if hint:
        text += f" ({hint})"
    return text


def one_line(text: str, limit: int = 400) -> str:
    """Collapse ``text`` to one line of at most ``limit`` characters."""
    text = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def physical_memory() -> int | None:
    """Bytes of memory this process may use: physical memory, or a smaller cgroup limit."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            total = int(text) if total is None else min(total, int(text))
    return total
