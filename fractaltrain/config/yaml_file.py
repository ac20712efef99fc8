"""Reading a config file's text safely: size, encoding, duplicate keys, alias bombs.

A config is a short, hand-written YAML file, and anything else should be a
one-line :class:`ConfigError` that says what is wrong with the file, never a
traceback or a machine brought down by a billion-laughs file.  PyYAML's
SafeLoader is the parser; this module adds what it does not check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fractaltrain.config.schema import MAX_CONFIG_BYTES, MAX_YAML_NODES
from fractaltrain.errors import ConfigError, key_text, short


def _lines(a: int, b: int) -> str:
    """``line N`` or ``lines N and M`` (1-based) for a duplicate-key message."""
    return f"line {a + 1}" if a == b else f"lines {a + 1} and {b + 1}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and aliases that expand beyond MAX_YAML_NODES."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    k = key_node.value
                    if k in seen:
                        raise ConfigError(
                            f"{key_text(k)}: duplicate key ({_lines(seen[k], key_node.start_mark.line)}); "
                            "give each key once"
                        )
                    seen[k] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node, memo: dict, active: set) -> int:
    """Number of nodes ``node`` stands for once every alias is expanded (linear time, shared nodes memoised)."""
    i = id(node)
    if i in memo:
        return memo[i]
    if i in active:
        raise ConfigError(f"config: an alias refers to itself (line {node.start_mark.line + 1}); remove the cycle")
    active.add(i)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, memo, active)
            if total > MAX_YAML_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, memo, active) + _expanded_size(v, memo, active)
            if total > MAX_YAML_NODES:
                break
    active.discard(i)
    memo[i] = total
    return total


def parse_yaml(text: str, where: str) -> Any:
    """Parse a config's text safely: no duplicate keys, no alias bombs, no deep nesting tracebacks."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _expanded_size(node, {}, set()) > MAX_YAML_NODES:
                raise ConfigError(
                    f"config: {where} expands to more than {MAX_YAML_NODES} values (YAML aliases?); a config is "
                    "a few dozen values"
                )
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = getattr(mark, "line", None)
        where_line = f" (line {line + 1})" if line is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f": {short(problem, 80).strip(chr(39))}" if problem else ""
        context = getattr(exc, "context", None) or ""
        first = getattr(exc, "context_mark", None)
        if context.startswith("found duplicate anchor") and first is not None and line is not None:
            # PyYAML names the anchor only in the context ("...; first occurrence") and says just
            # "second occurrence" as the problem, which alone does not tell which anchor.
            anchor = context[len("found duplicate anchor "):].rsplit("; first occurrence", 1)[0]
            raise ConfigError(
                f"config: {where} is not valid YAML: anchor &{short(anchor, 40).strip(chr(34) + chr(39))} is "
                f"defined twice ({_lines(first.line, line)}); give each anchor its own name") from None
        raise ConfigError(f"config: {where} is not valid YAML{where_line}{detail}") from None
    except RecursionError:
        raise ConfigError(f"config: {where} is nested too deeply to be a config") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config: {where} holds a value that cannot be read: {short(str(exc), 80)}") from None


def read_config_text(path: Path) -> str:
    """The text of the config file ``path``: a regular file, UTF-8, at most a megabyte, no NUL characters."""
    if not path.exists():
        raise ConfigError(f"config: no such file {short(str(path), 200)}")
    if not path.is_file():
        raise ConfigError(f"config: {short(str(path), 200)} is not a regular file; expected a YAML config")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config: {path} is larger than {MAX_CONFIG_BYTES >> 20} MB; a config is a short YAML file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config: {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    if "\0" in text:
        raise ConfigError(f"config: {path} contains NUL characters; expected a YAML text file")
    return text
