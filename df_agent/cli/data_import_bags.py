"""`df-agent data import-bags BAG... --out demos.zarr --config topics.yaml`: rosbag2 -> zarr replay buffer."""

from __future__ import annotations

import argparse
import pathlib

from df_agent.atomic_io import write_json_atomic

DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parents[2] / "data" / "topics_example.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", nargs="+", metavar="BAG", help="rosbag2 directories (sqlite3 or MCAP)")
    parser.add_argument("--out", required=True, help="replay buffer (zarr) to create or append to")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="topics YAML (default: %(default)s)")
    parser.add_argument("--skip-corrupt", action="store_true", help="report a bag that fails and go on")
    parser.add_argument("--report", default=None, help="write the per-bag import report as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from data.rosbag_import import BagImportError, ImportConfig, import_bags

    config = ImportConfig.from_yaml(args.config)
    reports = []
    failed = False
    try:
        reports = import_bags(
            args.bags, args.out, config, skip_corrupt=args.skip_corrupt, progress=not args.no_progress
        )
    except BagImportError as error:
        # Earlier bags are committed; say so, then report the failure (main() prints the error line).
        failed = True
        print(f"stopped at a corrupt bag; bags before it are kept in {args.out}")
        if args.report:
            write_json_atomic(args.report, {"error": str(error)})
        raise RuntimeError(str(error)) from error
    print(f"{'bag':<40} {'ok':<4} {'episodes':>8} {'kept':>6} {'ticks':>6} {'gaps':>5}  notes")
    for report in reports:
        notes = []
        if report.error:
            notes.append(report.error)
            failed = True
        if report.stale:
            notes.append(f"stale {report.stale}")
        if report.missing:
            notes.append(f"missing {report.missing}")
        if report.skipped_short:
            notes.append(f"short pieces skipped {report.skipped_short}")
        if report.padded_messages:
            notes.append(f"{report.padded_messages} padded payloads")
        name = pathlib.Path(report.bag).name[-40:]
        print(
            f"{name:<40} {'yes' if report.ok else 'NO':<4} {len(report.episodes):>8} {report.ticks_kept:>6} "
            f"{report.ticks:>6} {report.gaps:>5}  {'; '.join(notes)}"
        )
    if args.report:
        write_json_atomic(args.report, [r.to_dict() for r in reports])
    return 1 if failed else 0
