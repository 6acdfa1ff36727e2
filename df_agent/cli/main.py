"""Entry point of the `df-agent` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from df_agent import __version__
from df_agent.cli.registry import COMMANDS, GROUP_HELP, CommandSpec
from df_agent.logging_setup import configure_logging

log = logging.getLogger(__name__)


def _selected_command(argv: Sequence[str]) -> CommandSpec | None:
    positional = [a for a in argv if not a.startswith("-")]
    if len(positional) < 2:
        return None
    for spec in COMMANDS:
        if spec.group == positional[0] and spec.name == positional[1]:
            return spec
    return None


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="df-agent",
        description="Diffusion Forcing agent: train, plan, evaluate and deploy.",
    )
    parser.add_argument("--version", action="version", version=f"df-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    selected = _selected_command(argv)
    group_parsers: dict[str, argparse._SubParsersAction] = {}
    for group, help_text in GROUP_HELP.items():
        if not any(spec.group == group for spec in COMMANDS):
            continue
        group_parser = groups.add_parser(group, help=help_text, description=help_text)
        group_parsers[group] = group_parser.add_subparsers(dest="name", metavar="NAME")
    for spec in COMMANDS:
        sub = group_parsers[spec.group].add_parser(spec.name, help=spec.help, description=spec.help)
        if spec == selected:
            module = importlib.import_module(spec.module)
            module.add_arguments(sub)
            sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.command_line = ["df-agent", *argv]  # recorded in results files (df_agent.provenance)
    configure_logging(logging.WARNING if args.quiet else logging.INFO - 10 * min(args.verbose, 1))
    module = getattr(args, "_module", None)
    if module is None:
        # `df-agent` or `df-agent GROUP` alone: show what can be run.
        if args.group:
            parser.parse_args([args.group, "--help"])
        parser.print_help()
        return 2
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as error:
        # Library code raises errors that name the problem; show that line, not a traceback.
        if args.verbose >= 2:
            raise
        log.error("%s: %s", type(error).__name__, error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
