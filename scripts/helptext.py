"""``loa … --help`` in words, not in Python's types.

typer (0.29, rich help) writes a type tag after every parameter in Python's words:
``<bool>`` after each flag (``--json``, ``--help``), ``<str>``, ``<float range>
[x>=0.1]``, ``<list[Path]>``, a long choice list broken mid-word, and a required argument
as ``{spec}`` in the usage line. None of it can be set per parameter: an argument's tag
ignores its ``metavar``, and ``--help`` is typer's own. ``readable_help`` changes the
few methods that write them, once, for the whole ``loa`` command line:

- a flag takes no value: no tag;
- a value shows its ``metavar`` (``FILE``, ``ID``, ``DATE`` …), else a short choice list
  (``html|csv|xlsx``), else ``PATH`` for a path, else its name in capitals (``--port
  PORT``); an argument, its ``metavar`` or its name in capitals (``NUMBER``), in the
  usage line as in the table;
- a range in words: ``[at least 0.1]``, ``[1 to 64]``.

``tests/scripts/test_cli_help.py`` walks every command's help and fails on a tag in
Python's words, should a new typer write them another way.
"""

from __future__ import annotations

from typing import Any

#: The longest choice list shown as the value's tag; a longer one shows the name (the
#: help text lists the choices).
_CHOICES_SHOWN = 24


def _number(value: float) -> str:
    return f"{value:g}"


def range_words(low: float | None, high: float | None) -> str | None:
    """A number option's bounds as people say them: ``at least 0.1``, ``at most 9``,
    ``1 to 64``; ``None`` without bounds."""
    if low is None and high is None:
        return None
    if high is None:
        return f"at least {_number(low)}"  # type: ignore[arg-type]
    if low is None:
        return f"at most {_number(high)}"
    return f"{_number(low)} to {_number(high)}"


def value_name(param: Any) -> str | None:
    """What a parameter's value is called in help: ``None`` for a flag (it takes none),
    its ``metavar`` when it has one, a short choice list, ``PATH``, or its name in
    capitals."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar:
        return str(param.metavar)
    kind = param.type_descriptor
    if kind.is_choice and kind.choices:
        said = "|".join(str(getattr(c, "value", c)) for c in kind.choices)
        if len(said) <= _CHOICES_SHOWN:
            return said
    elif kind.is_path:
        return {"file": "FILE", "dir": "FOLDER"}.get(kind.path_type, "PATH")
    return (param.name or "value").upper()


def readable_help() -> None:
    """Make typer's help write parameters as ``value_name`` says and ranges in words
    (idempotent; typer is imported already by every ``loa`` module)."""
    from typer.core import TyperArgument, TyperOption

    if getattr(TyperOption, "_loa_readable", False):
        return

    def option_tag(self: Any, ctx: Any) -> str | None:
        return value_name(self)

    def argument_name(self: Any) -> str:
        return str(self.metavar or (self.name or "").upper())

    def argument_usage(self: Any) -> str:
        name = argument_name(self)
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def bounds(self: Any) -> str | None:
        return range_words(self.min, self.max)

    TyperOption.display_type_rich = option_tag  # type: ignore[method-assign]
    TyperOption._get_number_range_help_str = bounds  # type: ignore[method-assign]
    # An argument's name is its value's name (``ID``, ``FILE``): no tag beside it.
    TyperArgument.display_name_raw = property(argument_name)  # type: ignore[assignment]
    TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
    TyperArgument._usage_display_name = argument_usage  # type: ignore[method-assign]
    TyperArgument._get_number_range_help_str = bounds  # type: ignore[method-assign]
    TyperOption._loa_readable = True  # type: ignore[attr-defined]
