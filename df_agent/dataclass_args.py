"""Command-line flags generated from dataclass fields, so a setting has one default: the dataclass's.

    add_dataclass_arguments(group, DFPlannerConfig, help=SETTING_HELP, choices=SETTING_CHOICES)
    overrides = dataclass_arguments(args, DFPlannerConfig)   # {field: value} of the flags given

Every flag defaults to None ("not given"), so the caller layers what was given over its own defaults (a preset,
a checkpoint's tuned values) instead of argparse holding a second copy of each default. A field `some_name`
becomes `--some-name`; its type comes from the annotation (int, float, str, bool; `X | None` parses as X).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def dataclass_fields(cls: type, exclude: Iterable[str] = ()) -> list[dataclasses.Field]:
    """The fields of `cls` that get a flag: not excluded and of a type a flag can parse."""
    hints = typing.get_type_hints(cls)
    excluded = set(exclude)
    return [f for f in dataclasses.fields(cls) if f.name not in excluded and _scalar_type(hints[f.name]) is not None]


def add_dataclass_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
                            help: Mapping[str, str], choices: Mapping[str, Sequence[str]] | None = None,
                            exclude: Iterable[str] = (), defaults: Any = None, defaults_name: str = "default"
                            ) -> None:
    """Add one `--field-name` flag per field of `cls` (default None). help: text per field (required, so no flag
    goes without one); defaults: an instance whose values the help shows as "(DEFAULTS_NAME: value)"."""
    hints = typing.get_type_hints(cls)
    choices = choices or {}
    for f in dataclass_fields(cls, exclude):
        if f.name not in help:
            raise KeyError(f"no help text for {cls.__name__}.{f.name}")
        kind = _scalar_type(hints[f.name])
        text = help[f.name]
        if defaults is not None:
            text += f" ({defaults_name}: {getattr(defaults, f.name)})"
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif f.name in choices:
            parser.add_argument(flag, type=kind, choices=tuple(choices[f.name]), default=None, help=text)
        else:
            parser.add_argument(flag, type=kind, default=None, metavar=f.name.upper(), help=text)


def dataclass_arguments(args: argparse.Namespace, cls: type, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """{field: value} for the fields of `cls` whose flags were given on the command line."""
    values = {f.name: getattr(args, f.name, None) for f in dataclass_fields(cls, exclude)}
    return {name: value for name, value in values.items() if value is not None}


def _scalar_type(hint: Any) -> type | None:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = members[0] if len(members) == 1 else None
    return hint if hint in (int, float, str, bool) else None
