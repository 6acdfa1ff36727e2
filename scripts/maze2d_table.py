"""Markdown results table from a folder of `df-agent eval maze2d --out` JSON files (Table-1 comparable).

Each JSON file is one seed's run (its `seed` field names the first episode seed). Files are grouped by
(env id, run label); the label is the file's `label` field (written by the CLI: the planner preset plus every
setting that differs from it, and the observation corruption), else its `planner.preset`, else its `policy`.
Per group:
  * score: mean ± std over seeds (std with ddof=0) of each seed's mean normalised score, normalised with the
    single-goal maze's references (`normalized_score_mean_single_goal_refs`), the paper's Table 1 protocol;
  * seeds × episodes; success rate and mean first reach (steps; never-reached episodes count as the episode
    length) over all episodes of the group;
  * beside them the paper's DF column and, for the presets that reproduce one, the paper's matching column.

    python scripts/maze2d_table.py results/            # prints the table
    python scripts/maze2d_table.py results/ --out table.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from df_agent.atomic_io import write_text_atomic

ENV_ORDER = tuple(f"maze2d-{m}{s}-v0" for s in ("", "-multi") for m in ("umaze", "medium", "large"))
PRESET_ORDER = ("df", "df-no-mcg", "df-ar", "full-sequence", "diffuser-pd", "df-pd")
# Table 1 of the paper (FACTS.md): normalised score x100, mean ± std, Multi2D rows with single-goal references.
PAPER = {
    "DF": {"maze2d-umaze-v0": (116.7, 2.0), "maze2d-medium-v0": (149.4, 7.5), "maze2d-large-v0": (159.0, 2.7),
           "maze2d-umaze-multi-v0": (119.1, 4.0), "maze2d-medium-multi-v0": (152.3, 9.9),
           "maze2d-large-multi-v0": (167.1, 2.7)},
    "DF w/o MCG": {"maze2d-umaze-v0": (110.1, 3.9), "maze2d-medium-v0": (136.1, 10.2),
                   "maze2d-large-v0": (142.8, 5.6), "maze2d-umaze-multi-v0": (107.7, 4.9),
                   "maze2d-medium-multi-v0": (145.6, 6.5), "maze2d-large-multi-v0": (129.8, 1.5)},
    "Diffuser*": {"maze2d-umaze-v0": (113.9, 3.1), "maze2d-medium-v0": (121.5, 2.7), "maze2d-large-v0": (123.0, 6.4),
                  "maze2d-umaze-multi-v0": (128.9, 1.8), "maze2d-medium-multi-v0": (127.2, 3.4),
                  "maze2d-large-multi-v0": (132.1, 5.8)},
    "Diffuser (actions)": {"maze2d-umaze-v0": (6.3, 2.1), "maze2d-medium-v0": (13.5, 2.3),
                           "maze2d-large-v0": (6.3, 2.1), "maze2d-umaze-multi-v0": (32.8, 1.7),
                           "maze2d-medium-multi-v0": (22.0, 2.7), "maze2d-large-multi-v0": (6.9, 1.7)},
}
PAPER_COLUMN_OF_PRESET = {"df": "DF", "df-no-mcg": "DF w/o MCG", "full-sequence": "Diffuser (actions)",
                          "diffuser-pd": "Diffuser*"}
REQUIRED = ("env_id", "seed", "episodes", "normalized_score_mean_single_goal_refs", "success_rate",
            "mean_first_reach")


@dataclass
class Group:
    env_id: str
    label: str
    preset: str | None
    runs: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def add(self, run: dict[str, Any], path: Path) -> None:
        for other, other_path in zip(self.runs, self.files):
            if other["seed"] == run["seed"]:
                raise ValueError(f"{path} and {other_path} are both seed {run['seed']} of {self.env_id} / "
                                 f"{self.label!r}; keep one file per seed (a seed counted twice biases the std)")
        self.runs.append(run)
        self.files.append(path)

    def score(self) -> tuple[float, float]:
        values = [float(run["normalized_score_mean_single_goal_refs"]) for run in self.runs]
        mean = sum(values) / len(values)
        return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))

    def episodes(self) -> int:
        return sum(int(run["episodes"]) for run in self.runs)

    def weighted(self, key: str) -> float:
        return sum(float(run[key]) * int(run["episodes"]) for run in self.runs) / self.episodes()

    def seeds_by_episodes(self) -> str:
        counts = {int(run["episodes"]) for run in self.runs}
        if len(counts) == 1:
            return f"{len(self.runs)} × {counts.pop()}"
        return f"{len(self.runs)} seeds, {self.episodes()} episodes"


def run_label(run: dict[str, Any]) -> tuple[str, str | None]:
    planner = run.get("planner") if isinstance(run.get("planner"), dict) else None
    preset = planner.get("preset") if planner else None
    label = run.get("label") or preset or str(run.get("policy", "?"))
    return str(label), preset


def load_groups(folder: Path) -> tuple[list[Group], list[str]]:
    """Groups of the result JSONs under `folder` (recursively) and notes on the files that were skipped."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a directory of eval result JSON files")
    groups: dict[tuple[str, str], Group] = {}
    skipped: list[str] = []
    for path in sorted(folder.rglob("*.json")):
        try:
            run = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            skipped.append(f"{path}: not readable JSON ({error})")
            continue
        missing = [key for key in REQUIRED if not isinstance(run, dict) or key not in run]
        if missing:
            skipped.append(f"{path}: not an eval maze2d result (lacks {', '.join(missing)})")
            continue
        label, preset = run_label(run)
        key = (str(run["env_id"]), label)
        if key not in groups:
            groups[key] = Group(key[0], label, preset)
        groups[key].add(run, path)
    if not groups:
        raise ValueError(f"no eval maze2d result JSON files under {folder}" + (f" ({len(skipped)} skipped)"
                                                                              if skipped else ""))

    def order(group: Group) -> tuple:
        env_rank = ENV_ORDER.index(group.env_id) if group.env_id in ENV_ORDER else len(ENV_ORDER)
        preset_rank = PRESET_ORDER.index(group.preset) if group.preset in PRESET_ORDER else len(PRESET_ORDER)
        return env_rank, group.env_id, preset_rank, group.label

    return sorted(groups.values(), key=order), skipped


def paper_cell(column: str | None, env_id: str) -> str:
    if column is None or env_id not in PAPER.get(column, {}):
        return "—"
    mean, std = PAPER[column][env_id]
    return f"{mean:.1f}±{std:.1f}"


def markdown_table(groups: list[Group]) -> str:
    lines = [
        "| env | run | score (single-goal refs) | seeds × episodes | success rate | mean first reach | paper DF | "
        "paper, same method |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group in groups:
        mean, std = group.score()
        same = PAPER_COLUMN_OF_PRESET.get(group.preset or "")
        same_cell = f"{paper_cell(same, group.env_id)} ({same})" if same and same != "DF" else "—"
        lines.append(
            f"| {group.env_id} | {group.label} | {mean:.1f} ± {std:.1f} | {group.seeds_by_episodes()} | "
            f"{group.weighted('success_rate'):.2f} | {group.weighted('mean_first_reach'):.1f} | "
            f"{paper_cell('DF', group.env_id)} | {same_cell} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of eval result JSON files (searched recursively)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)
    try:
        groups, skipped = load_groups(args.folder)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for note in skipped:
        print(f"skipped {note}", file=sys.stderr)
    table = markdown_table(groups)
    print(table)
    if args.out is not None:
        write_text_atomic(args.out, table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
