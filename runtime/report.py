"""`polytask report RUN_DIR`: a finished (or interrupted) run as one HTML page with PNG figures.

    result = write_report("runs/digits-hard")          # -> runs/digits-hard/report/index.html

What it reads, all of it optional except that a run directory must have something to show:
metrics.jsonl (learning curves), report.json (final metrics, the `--baseline` comparison with
its intervals, a meta run's adaptation curve), program.json (the plan's parameter groups) and
affinity.json (`polytask affinity`; in RUN_DIR or RUN_DIR/affinity/, or given explicitly).

TensorFlow-free: it imports matplotlib (Agg backend) and nothing that trains. The page is one
HTML file with inline CSS and the figures beside it as PNGs, laid out as small multiples so a
run with 30 tasks reads as well as one with 3. The output folder holds a manifest of the
files this module wrote; it never writes into a folder that has files it did not write.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from polytask.errors import PolytaskError, RunError
from polytask.runtime.affinity import WRITE_AFFINITY_HINT, affinity_file, read_affinity
from polytask.runtime.rundir import REPORT_DIR, SEED_DIR_PREFIX, RunDir, existing_run

#: The manifest in the output folder: which files a previous `polytask report` wrote there.
MANIFEST = ".polytask-report.json"
PAGE = "index.html"
#: Panels per row of the small-multiples grids.
GRID_COLUMNS = 6


# --------------------------------------------------------------------------- reading the run


@dataclass
class RunContent:
    """Everything the page shows, read from the run directory (missing parts are None/empty)."""

    root: Path
    #: metrics.jsonl records per run: {"": records} for one run, {"seed 0": ..., ...} for --seeds.
    sources: dict[str, list[dict]] = field(default_factory=dict)
    #: Final test metrics per seed run (--seeds: each seed-<s>/report.json), for the mean over seeds.
    seed_metrics: list[dict] = field(default_factory=list)
    report: Optional[dict] = None
    program: Optional[dict] = None
    affinity: Optional[dict] = None
    affinity_path: Optional[Path] = None
    notices: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[dict]:
        return [record for records in self.sources.values() for record in records]

    @property
    def plan(self) -> dict:
        return (self.program or {}).get("plan") or {}

    @property
    def tasks(self) -> list[str]:
        """Task names in the plan's order, else in the order the metrics first name them."""
        names = list((self.plan.get("tasks") or {}))
        seen = set(names)
        for record in self.records:
            for key in record:
                task = _task_of(key, record.get("split"))
                if task and task not in seen:
                    seen.add(task)
                    names.append(task)
        return names


def _task_of(key: str, split: Optional[str]) -> Optional[str]:
    """The task a metrics key belongs to: `loss/<task>` in train records, `<task>/<metric>` elsewhere."""
    if "/" not in key:
        return None
    head, tail = key.split("/", 1)
    if split == "train":
        return tail if head == "loss" else None
    return head


def _read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}", hint="the run directory looks damaged; train again") from None
    if not isinstance(content, dict):
        raise RunError(f"{path} does not hold a JSON object", hint="the run directory looks damaged; train again")
    return content


def _read_records(path: Path, notices: list[str]) -> list[dict]:
    """metrics.jsonl's records; a line cut short (a killed run) is left out with a notice."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"cannot read {path}: {exc}", hint="the run directory looks damaged") from None
    records, bad = [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
        else:
            bad += 1
    if bad:
        notices.append(f"{bad} unreadable line(s) in {path} were left out")
    return records


def seed_runs(root: Path) -> list[tuple[int, Path]]:
    """The per-seed run directories of a `--seeds` run (RUN_DIR/seed-<s>/), by seed."""
    found = []
    for path in root.glob(f"{SEED_DIR_PREFIX}*"):
        number = path.name[len(SEED_DIR_PREFIX):]
        if path.is_dir() and number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def read_run(run_dir, affinity: Optional[Path] = None) -> RunContent:
    """Read what a report can show from `run_dir`; a `RunError` when it has nothing to show.

    A `--seeds` run directory holds the comparison in its report.json and one run per seed in
    seed-<s>/: the curves then come from every seed, the plan from the first.
    """
    root = existing_run(run_dir)
    run = RunDir(root, writer=False)
    content = RunContent(root=root)
    if run.report_file.exists():
        content.report = _read_json(run.report_file)
    if run.metrics_file.exists():
        content.sources[""] = _read_records(run.metrics_file, content.notices)
    if run.program_file.exists():
        content.program = _read_json(run.program_file)
    seeds = seed_runs(root) if not run.metrics_file.exists() else []
    for seed, path in seeds:
        member = RunDir(path, writer=False)
        if member.metrics_file.exists():
            content.sources[f"seed {seed}"] = _read_records(member.metrics_file, content.notices)
        if content.program is None and member.program_file.exists():
            content.program = _read_json(member.program_file)
        if member.report_file.exists():
            metrics = _read_json(member.report_file).get("metrics")
            test = metrics.get("test") if isinstance(metrics, dict) else None
            if metrics is not None and not isinstance(metrics, dict):
                content.notices.append(f"{member.report_file} is damaged ('metrics' is not an object): "
                                       "its metrics are left out")
            if isinstance(test, dict) and test:
                content.seed_metrics.append(test)
    if content.report is None:
        why = ("it was removed after the run finished (the export is there); `polytask evaluate` recomputes the "
               "test metrics" if run.export_info_file.exists() or run.meta_export_info_file.exists()
               else "the run did not finish")
        content.notices.append(f"no {run.report_file.name} ({why}): only learning curves are shown")
    path = affinity_file(Path(affinity) if affinity is not None else root)
    if affinity is not None and path is None:
        raise RunError(f"--affinity: no affinity file at {affinity}", hint=WRITE_AFFINITY_HINT)
    if path is not None:
        content.affinity = read_affinity(path)
        content.affinity_path = path
    if not content.records and content.report is None:
        raise RunError(f"{root} has nothing to report yet (no metrics.jsonl records and no report.json)",
                       hint="train the run first (its first log point is written after training.log_every steps)")
    return content


# --------------------------------------------------------------------------- normalising sections


def _number(value) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(float(value)) else None
    return None


def _stats(value) -> tuple[Optional[float], Optional[float], Optional[int]]:
    """(mean, ci95, seeds) of a plain number or a {mean, ci95, values} summary."""
    if isinstance(value, dict):
        values = value.get("values")
        return _number(value.get("mean")), _number(value.get("ci95")), len(values) if isinstance(values, list) else None
    return _number(value), None, None


def baseline_rows(baseline: dict) -> list[dict]:
    """One row per (task, metric) of report.json's `baseline`, whichever of its two layouts it has.

    Single runs write `tasks.<task> = {metric, multi_task, independent, relative_change, ...}`;
    `--seeds` runs write `tasks.<task>.<metric> = {multi_task: {mean, ci95, values},
    independent: {...}, change, verdict}` (and with `--baseline groups` also `groups: {...}`
    and `groups_vs_independent: {change, verdict}`).
    """
    rows = []
    for task, entry in (baseline.get("tasks") or {}).items():
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("metric"), str):
            better = entry.get("multi_task_better")
            per_metric = {entry["metric"]: {
                "multi_task": entry.get("multi_task"), "independent": entry.get("independent"),
                "change": entry.get("relative_change"), "higher_is_better": entry.get("higher_is_better"),
                "verdict": {None: "no change", True: "sharing helps", False: "sharing hurts"}.get(better, "")}}
        else:
            per_metric = {k: v for k, v in entry.items() if isinstance(v, dict)}
        for metric, cell in per_metric.items():
            mt, mt_ci, seeds = _stats(cell.get("multi_task"))
            ind, ind_ci, _ = _stats(cell.get("independent"))
            change = cell.get("change", cell.get("relative_change"))
            row = {"task": task, "metric": metric, "multi_task": mt, "multi_task_ci95": mt_ci,
                   "independent": ind, "independent_ci95": ind_ci, "seeds": seeds,
                   "change": _number(change), "verdict": str(cell.get("verdict") or ""),
                   "higher_is_better": cell.get("higher_is_better")}
            if isinstance(cell.get("groups"), dict):  # --baseline groups: the suggested groups' arm
                row["groups"], row["groups_ci95"], _ = _stats(cell["groups"])
                versus = cell.get("groups_vs_independent") or {}
                row["groups_change"], row["groups_verdict"] = _number(versus.get("change")), str(versus.get("verdict") or "")
            rows.append(row)
    return rows


def learning_series(records: list[dict], tasks: list[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Per panel ('all' and each task): series name -> [(step, value)] for train and validation."""
    panels: dict[str, dict[str, list]] = {"all": {}}
    for task in tasks:
        panels[task] = {}
    for record in sorted(records, key=lambda r: r["step"]):
        split, step = record.get("split"), record["step"]
        if split not in ("train", "validation"):
            continue
        for key, value in record.items():
            value = _number(value)
            if value is None or key in ("step", "split"):
                continue
            if split == "train":
                if key == "loss":
                    panels["all"].setdefault("train loss", []).append((step, value))
                elif key.startswith("loss/") and key[5:] in panels:
                    panels[key[5:]].setdefault("train loss", []).append((step, value))
            else:
                if key == "loss":
                    panels["all"].setdefault("validation loss", []).append((step, value))
                elif "/" in key and key.split("/", 1)[0] in panels:
                    task, metric = key.split("/", 1)
                    panels[task].setdefault(f"validation {metric}", []).append((step, value))
                elif "/" not in key and not key.endswith("_ci95"):  # meta runs: metrics without a task
                    panels["all"].setdefault(f"validation {key}", []).append((step, value))
    return {name: series for name, series in panels.items() if series}


# --------------------------------------------------------------------------- figures


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PolytaskError("polytask report draws its figures with matplotlib, which is not installed",
                            hint="pip install 'polytask[report]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _grid(count: int) -> tuple[int, int]:
    columns = min(GRID_COLUMNS, max(count, 1))
    return math.ceil(count / columns), columns


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def merge_sources(by_source: dict[str, dict]) -> dict[str, dict[str, list[list[tuple[int, float]]]]]:
    """{panel: {series: [points of each run]}} from `learning_series` of each run (seed)."""
    merged: dict[str, dict[str, list]] = {}
    for panels in by_source.values():
        for name, series in panels.items():
            for label, points in series.items():
                merged.setdefault(name, {}).setdefault(label, []).append(points)
    return merged


def _learning_figures(plt, panels: dict, out: Path, runs: int = 1) -> list[tuple[str, str]]:
    """Two grids of small multiples: losses (train vs validation) and validation metrics.

    `panels` is `merge_sources`' output; with several runs (seeds) each is one thin line.
    """
    figures = []
    loss_panels = {name: {k: v for k, v in series.items() if k in ("train loss", "validation loss")}
                   for name, series in panels.items()}
    metric_panels = {name: {k: v for k, v in series.items() if k.startswith("validation ") and k != "validation loss"}
                     for name, series in panels.items()}
    seeds = f", {runs} seeds" if runs > 1 else ""
    for filename, title, chosen in (("curves_loss.png", f"Loss per task: train (line) and validation (dots){seeds}",
                                     loss_panels),
                                    ("curves_metrics.png", f"Validation metrics per task{seeds}", metric_panels)):
        chosen = {name: series for name, series in chosen.items() if series}
        if not chosen:
            continue
        rows, columns = _grid(len(chosen))
        figure, axes = plt.subplots(rows, columns, figsize=(2.7 * columns, 2.1 * rows + 0.5), squeeze=False,
                                    sharex=True)
        for ax in axes.flat[len(chosen):]:
            ax.set_visible(False)
        for ax in axes.flat[max(len(chosen) - columns, 0):len(chosen)]:
            ax.tick_params(labelbottom=True)  # the last panel of its column, though not in the last row
        for ax, (name, series) in zip(axes.flat, chosen.items()):
            for index, (label, runs_points) in enumerate(sorted(series.items())):
                style = {"marker": "o", "markersize": 3, "linestyle": "--"} if label.startswith("validation") else {}
                for run, points in enumerate(runs_points):
                    steps, values = zip(*points)
                    ax.plot(steps, values, label=label.replace("validation ", "val ") if run == 0 else None,
                            color=f"C{index}", linewidth=1.2 if len(runs_points) == 1 else 0.8,
                            alpha=1.0 if len(runs_points) == 1 else 0.6, **style)
            ax.set_title("all tasks (weighted sum)" if name == "all" else _short(name), fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)

        shown = None
        for ax, series in zip(axes.flat, chosen.values()):
            if set(series) != shown:  # a legend only where the series differ from the panel before
                ax.legend(fontsize=6, loc="best")
                shown = set(series)
        figure.suptitle(title, fontsize=11)
        figure.supxlabel("step", fontsize=9)
        # Fixed margins in inches: tight_layout costs seconds on a 31-panel grid.
        width, height = figure.get_size_inches()
        figure.subplots_adjust(left=0.45 / width, right=1 - 0.15 / width, bottom=0.55 / height,
                               top=1 - 0.8 / height, wspace=0.28, hspace=0.45)
        figure.savefig(out / filename, dpi=90)
        plt.close(figure)
        figures.append((filename, title))
    return figures


def _baseline_figure(plt, rows: list[dict], out: Path) -> Optional[str]:
    """Multi-task vs independent per task, one panel per metric, intervals as error bars."""
    metrics = list(dict.fromkeys(r["metric"] for r in rows if r["multi_task"] is not None or r["independent"] is not None))
    if not metrics:
        return None
    heights = [sum(1 for r in rows if r["metric"] == m) for m in metrics]
    figure, axes = plt.subplots(1, len(metrics), figsize=(max(4.2 * len(metrics), 7.0), 0.32 * max(heights) + 1.6),
                                squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        chosen = [r for r in rows if r["metric"] == metric]
        positions = list(range(len(chosen)))[::-1]
        for offset, key, label, color in ((0.2, "multi_task", "multi-task", "tab:blue"),
                                           (0.0, "independent", "independent", "tab:orange"),
                                           (-0.2, "groups", "groups", "tab:green")):
            points = [(p + offset, r[key], r.get(f"{key}_ci95") or 0.0) for p, r in zip(positions, chosen)
                      if r.get(key) is not None]
            if points:
                y, x, err = zip(*points)
                ax.errorbar(x, y, xerr=err, fmt="o", markersize=4, capsize=2, color=color, label=label)
        ax.set_yticks(positions)
        ax.set_yticklabels([_short(r["task"]) for r in chosen], fontsize=7)
        ax.set_title(metric, fontsize=10)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    seeds = max((r["seeds"] or 0 for r in rows), default=0)
    figure.suptitle("Multi-task vs each task trained alone"
                    + (f" (bars: 95% CI over {seeds} seeds)" if seeds else " (one seed)"), fontsize=10)
    figure.tight_layout()
    figure.savefig(out / "baseline.png", dpi=90)
    plt.close(figure)
    return "baseline.png"


def _adaptation_figure(plt, meta_test: dict, out: Path) -> Optional[str]:
    curve = [p for p in meta_test.get("curve") or [] if isinstance(p, dict)]
    metrics = list(dict.fromkeys(k for p in curve for k, v in p.items() if isinstance(v, dict) and "mean" in v))
    if not curve or not metrics:
        return None
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        points = [(p.get("steps", i), p[metric]["mean"], p[metric].get("ci95") or 0.0)
                  for i, p in enumerate(curve) if isinstance(p.get(metric), dict)]
        steps, means, cis = zip(*points)
        lower = [m - c for m, c in zip(means, cis)]
        upper = [m + c for m, c in zip(means, cis)]
        if len(points) > 1:
            ax.fill_between(steps, lower, upper, alpha=0.25, label="95% CI")
            ax.plot(steps, means, marker="o", markersize=3, label="mean")
        else:
            ax.errorbar(steps, means, yerr=cis, fmt="o", capsize=3, label="mean, 95% CI")
        ax.set_xlabel("adaptation steps", fontsize=8)
        ax.set_title(metric, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle(f"Meta-{meta_test.get('split', 'test')} adaptation over {meta_test.get('episodes', '?')} episodes",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(out / "adaptation.png", dpi=90)
    plt.close(figure)
    return "adaptation.png"


def affinity_order(affinity: dict) -> list[int]:
    """Task indices ordered group by group (tasks in no group last), so groups are blocks."""
    tasks = list(affinity["tasks"])
    order: list[int] = []
    for group in affinity.get("groups") or []:
        for name in group if isinstance(group, list) else []:
            if name in tasks and tasks.index(name) not in order:
                order.append(tasks.index(name))
    return order + [i for i in range(len(tasks)) if i not in order]


def _affinity_figure(plt, affinity: dict, out: Path) -> str:
    import numpy as np

    tasks = list(affinity["tasks"])
    order = affinity_order(affinity)
    matrix = np.array([[(_number(v) if _number(v) is not None else np.nan) for v in row] for row in affinity["affinity"]],
                      dtype=float)[np.ix_(order, order)]
    names = [tasks[i] for i in order]
    size = min(3.0 + 0.32 * len(tasks), 14.0)
    figure, ax = plt.subplots(figsize=(size + 1.2, size))
    finite = matrix[np.isfinite(matrix)]
    limit = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    image = ax.imshow(matrix, cmap="RdBu", vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(names)))
    ax.set_yticks(range(len(names)))
    font = 8 if len(names) <= 15 else 6
    ax.set_xticklabels([_short(n, 16) for n in names], rotation=90, fontsize=font)
    ax.set_yticklabels([_short(n, 16) for n in names], fontsize=font)
    if len(names) <= 12:
        for i in range(len(names)):
            for j in range(len(names)):
                if np.isfinite(matrix[i, j]):
                    ax.text(j, i, f"{matrix[i, j]:.2g}", ha="center", va="center", fontsize=7)
    placed: set = set()
    for group in affinity.get("groups") or []:
        placed |= {n for n in group if n in tasks} if isinstance(group, list) else set()
        edge = len(placed)  # overlapping groups: a task sits with the first group that has it
        if 0 < edge < len(names):
            ax.axhline(edge - 0.5, color="black", linewidth=1)
            ax.axvline(edge - 0.5, color="black", linewidth=1)
    ax.set_xlabel("task j (whose loss changes)")
    ax.set_ylabel("task i (whose step is taken)")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title("Inter-task affinity: row i helps column j when > 0 (lines: groups)", fontsize=10)
    figure.tight_layout()
    figure.savefig(out / "affinity.png", dpi=90)
    plt.close(figure)
    return "affinity.png"


# --------------------------------------------------------------------------- the page


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    number = _number(value)
    if number is None:
        return "n/a" if value is None else _e(value)
    return f"{number:,.1f}" if abs(number) >= 10 ** digits else f"{number:.{digits}g}"


def _interval(mean, ci) -> str:
    if mean is None:
        return "n/a"
    return _fmt(mean) + (f" ± {_fmt(ci)}" if ci is not None else "")


def _table(headers: list[str], rows: list[list[str]], *, table_id: str = "", filterable: bool = False) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    box = (f'<input type="search" class="filter" data-table="{table_id}" placeholder="filter tasks" '
           f'aria-label="filter the rows of this table">' if filterable else "")
    return f'{box}<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _metrics_table(content: RunContent) -> str:
    metrics = ((content.report or {}).get("metrics") or {})
    split = "test" if metrics.get("test") else next((s for s, v in metrics.items() if v), None)
    heading = f"{split} split"
    if split is None and content.seed_metrics:  # --seeds: the mean of the seed runs' test metrics
        keys = [k for k in content.seed_metrics[0] if all(_number(m.get(k)) is not None for m in content.seed_metrics)]
        metrics = {"test": {k: sum(m[k] for m in content.seed_metrics) / len(content.seed_metrics) for k in keys}}
        split, heading = "test", f"test split, mean over {len(content.seed_metrics)} seeds"
    if split is None:
        return ""
    values = metrics[split]
    tasks = [t for t in content.tasks if any(k.startswith(f"{t}/") for k in values)]
    if tasks:
        names = list(dict.fromkeys(k.split("/", 1)[1] for k in values if "/" in k and k.split("/", 1)[0] in tasks))
        rows = [[_e(t)] + [_fmt(values.get(f"{t}/{m}")) if f"{t}/{m}" in values else "" for m in names] for t in tasks]
        table = _table(["task"] + [_e(m) for m in names], rows, table_id="final-metrics", filterable=len(tasks) > 8)
    else:
        table = _table(["metric", "value"], [[_e(k), _fmt(v)] for k, v in sorted(values.items())], table_id="final-metrics")
    extra = f"<p>Weighted total loss: {_fmt(values['loss'])}</p>" if tasks and "loss" in values else ""
    return f"<h2 id=\"metrics\">Final metrics ({_e(heading)})</h2>{extra}{table}"


def _overview(content: RunContent) -> str:
    report = content.report or {}
    plan = content.plan
    facts = [("run directory", content.root), ("spec", report.get("spec")), ("sharing", report.get("sharing") or plan.get("sharing")),
             ("tasks", len(content.tasks) or None), ("seed", report.get("seed")),
             ("steps", report.get("steps")), ("wall time (s)", report.get("wall_time_seconds")),
             ("steady-state steps/s", report.get("steady_state_steps_per_second")),
             ("evaluated weights", report.get("evaluated_weights"))]
    parameters = report.get("parameters") or plan.get("totals")
    if isinstance(parameters, dict):
        facts.append(("parameters", f"{parameters.get('total', 0):,} ({parameters.get('shared', 0):,} shared, "
                                    f"{parameters.get('task_specific', 0):,} task-specific)"))
    if report.get("stopped_early"):
        facts.append(("early stopping", json.dumps(report.get("early_stopping"))))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v not in (None, ""))
    return f'<table class="facts">{rows}</table>'


def _baseline_section(content: RunContent, image: Optional[str], rows: list[dict]) -> str:
    baseline = (content.report or {}).get("baseline") or {}
    parts = [f"<h2 id=\"baseline\">Baseline: {_e(baseline.get('kind', 'independent'))} "
             f"({_e(baseline.get('split', 'test'))} split)</h2>"]
    for key, what in (("delta_m", "multi-task"), ("groups_delta_m", "suggested groups")):
        delta = baseline.get(key)
        if isinstance(delta, dict) and _number(delta.get("mean")) is not None:
            ci = _number(delta.get("ci95"))
            parts.append(f"<p class=\"headline\">Δm of {what} vs each task alone (mean relative change of the "
                         f"primary metrics, &gt; 0: better): <b>{_number(delta['mean']):+.2f}%"
                         + (f" ± {ci:.2f}%" if ci is not None else "") + "</b></p>")
    if image:
        parts.append(f'<img src="{image}" alt="multi-task vs independent per task">')
    seeds = any(r["seeds"] for r in rows)
    headers = ["task", "metric", "multi-task" + (" (mean ± 95% CI)" if seeds else ""),
               "independent" + (" (mean ± 95% CI)" if seeds else ""), "change", "verdict"]
    groups = any("groups" in r for r in rows)
    if groups:
        headers += ["groups" + (" (mean ± 95% CI)" if seeds else ""), "groups vs alone", "verdict"]

    def pct(value):
        return "n/a" if value is None else f"{100 * value:+.1f}%"

    table_rows = [[_e(r["task"]), _e(r["metric"]), _interval(r["multi_task"], r["multi_task_ci95"]),
                   _interval(r["independent"], r["independent_ci95"]), pct(r["change"]), _e(r["verdict"])]
                  + ([_interval(r.get("groups"), r.get("groups_ci95")), pct(r.get("groups_change")),
                      _e(r.get("groups_verdict", ""))] if groups else []) for r in rows]
    parts.append(_table(headers, table_rows, table_id="baseline-table", filterable=len(rows) > 8))
    return "".join(parts)


def _adaptation_section(meta_test: dict, image: Optional[str]) -> str:
    curve = [p for p in meta_test.get("curve") or [] if isinstance(p, dict)]
    metrics = list(dict.fromkeys(k for p in curve for k, v in p.items() if isinstance(v, dict) and "mean" in v))
    shape = ", ".join(f"{k} {meta_test[k]}" for k in ("ways", "shots", "queries") if meta_test.get(k) is not None)
    rows = [[_e(p.get("steps", i))] + [_interval(_number((p.get(m) or {}).get("mean")), _number((p.get(m) or {}).get("ci95")))
                                       for m in metrics] for i, p in enumerate(curve)]
    return (f"<h2 id=\"adaptation\">Meta-learning: adaptation curve</h2>"
            f"<p>{_e(meta_test.get('algorithm', ''))}, {_e(meta_test.get('episodes', '?'))} episodes of the "
            f"{_e(meta_test.get('split', 'test'))} split{', ' + _e(shape) if shape else ''}; mean and 95% confidence "
            f"interval of the query metrics after each inner step.</p>"
            + (f'<img src="{image}" alt="adaptation curve">' if image else "")
            + _table(["inner steps"] + [_e(m) for m in metrics], rows, table_id="adaptation-table"))


def _affinity_section(content: RunContent, image: str) -> str:
    affinity = content.affinity or {}
    groups = [g for g in affinity.get("groups") or [] if isinstance(g, list)]
    items = "".join(f"<li>group {i + 1}: {_e(', '.join(map(str, g)))}</li>" for i, g in enumerate(groups))
    steps = f" measured over {_e(affinity['steps'])} steps" if affinity.get("steps") is not None else ""
    return (f"<h2 id=\"affinity\">Task affinity</h2><p>From {_e(content.affinity_path)}{steps}. Row i, column j: "
            f"1 - L_j(shared parameters after a step on task i) / L_j, so &gt; 0 means i's updates help j; tasks are "
            f"ordered by group.</p><img src=\"{image}\" alt=\"task affinity heatmap\">"
            + (f"<p>Suggested groups:</p><ul>{items}</ul>" if items else ""))


def _layers(layers: list) -> str:
    parts = []
    for layer in layers:
        if isinstance(layer, dict):
            shape = "×".join(str(s) for s in layer.get("output_shape") or [])
            parts.append(f"{layer.get('kind', '?')}" + (f" → {shape}" if shape else ""))
    return _e(" · ".join(parts))


def _plan_section(content: RunContent) -> str:
    plan = content.plan
    if not plan:
        return ""
    all_tasks = set(content.tasks)
    if plan.get("parameter_groups"):
        rows = []
        for group in plan["parameter_groups"]:
            tasks = group.get("tasks") or []
            who = f"all {len(tasks)} tasks" if len(tasks) > 1 and set(tasks) == all_tasks else ", ".join(tasks)
            rows.append([_e(group.get("name")), "shared" if group.get("shared") else "task-specific", _e(who),
                         f"{int(group.get('params') or 0):,}", _layers(group.get("layers") or [])
                         + (f"<br><small>{_e(group['note'])}</small>" if group.get("note") else "")])
        table = _table(["group", "kind", "tasks", "parameters", "layers (output shape)"], rows,
                       table_id="plan-groups", filterable=len(rows) > 8)
    elif plan.get("layers"):
        rows = [[_e(l.get("name")), _e(l.get("kind")), _e("×".join(str(s) for s in l.get("output_shape") or [])),
                 f"{int(l.get('parameters') or 0):,}"] for l in plan["layers"] if isinstance(l, dict)]
        table = _table(["layer", "kind", "output shape", "parameters"], rows, table_id="plan-groups")
    else:
        return ""
    totals = plan.get("totals") or {}
    summary = (f"<p>{int(totals.get('total', 0)):,} parameters: {int(totals.get('shared', 0)):,} shared, "
               f"{int(totals.get('task_specific', 0)):,} task-specific.</p>") if totals else ""
    return f"<h2 id=\"plan\">Parameter groups (the plan)</h2>{summary}{table}"


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1500px;padding:0 1.5em 3em;color:#222}
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav a{margin-right:1em}img{max-width:100%;height:auto;display:block;margin:.8em 0}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f4f4;position:sticky;top:0}
table.facts th{text-align:left;background:#f8f8f8}table.facts td{text-align:left}
.scroll{max-height:32em;overflow:auto;display:inline-block;max-width:100%}.notice{color:#8a5300}
.headline{font-size:1.1em}input.filter{margin:.4em 0;padding:.2em .4em}
"""

SCRIPT = """
document.querySelectorAll("input.filter").forEach(function (box) {
  box.addEventListener("input", function () {
    var needle = box.value.toLowerCase();
    document.querySelectorAll("#" + box.dataset.table + " tbody tr").forEach(function (row) {
      row.style.display = row.cells[0].textContent.toLowerCase().indexOf(needle) >= 0 ? "" : "none";
    });
  });
});
"""


def render(content: RunContent, out: Path) -> tuple[str, list[str]]:
    """Draw the figures into `out` and return (the page's HTML, the figure file names)."""
    plt = _pyplot()
    report = content.report or {}
    title = report.get("name") or content.plan.get("name") or content.root.name
    sections, images, nav = [], [], []

    metrics = _metrics_table(content)
    if metrics:
        nav.append(("metrics", "final metrics"))
        sections.append(metrics)
    rows = baseline_rows(report["baseline"]) if isinstance(report.get("baseline"), dict) else []
    if rows:
        image = _baseline_figure(plt, rows, out)
        images.extend([image] if image else [])
        nav.append(("baseline", "baseline"))
        sections.append(_baseline_section(content, image, rows))
    if isinstance(report.get("meta_test"), dict):
        image = _adaptation_figure(plt, report["meta_test"], out)
        images.extend([image] if image else [])
        nav.append(("adaptation", "adaptation curve"))
        sections.append(_adaptation_section(report["meta_test"], image))
    tasks = content.tasks
    curves = _learning_figures(plt, merge_sources({source: learning_series(records, tasks)
                                                   for source, records in content.sources.items()}),
                               out, runs=len(content.sources))
    if curves:
        nav.append(("curves", "learning curves"))
        sections.append("<h2 id=\"curves\">Learning curves</h2>" + "".join(
            f'<img src="{name}" alt="{_e(caption)}">' for name, caption in curves))
        images.extend(name for name, _ in curves)
    if content.affinity is not None:
        image = _affinity_figure(plt, content.affinity, out)
        images.append(image)
        nav.append(("affinity", "task affinity"))
        sections.append(_affinity_section(content, image))
    plan = _plan_section(content)
    if plan:
        nav.append(("plan", "parameter groups"))
        sections.append(plan)
    notices = "".join(f'<p class="notice">{_e(n)}</p>' for n in content.notices)
    links = "".join(f'<a href="#{anchor}">{_e(label)}</a>' for anchor, label in nav)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>polytask report: {_e(title)}</title><link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head>\n"
            f"<body><h1>{_e(title)}</h1>{_overview(content)}{notices}<nav>{links}</nav>\n"
            + "\n".join(sections) + f"\n<script>{SCRIPT}</script></body></html>\n")
    return page, images


# --------------------------------------------------------------------------- writing safely


def _prepare_out(out: Path) -> set[str]:
    """Make sure `out` is ours to write; returns the names a previous report wrote there."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file", hint="pass a folder for the report (default: RUN_DIR/report)")
    if not out.exists():
        try:
            out.mkdir(parents=True)
        except OSError as exc:
            raise RunError(f"cannot create {out}: {exc.strerror}", hint="choose a writable --out folder") from None
        return set()
    entries = {p.name for p in out.iterdir()}
    if not entries:
        return set()
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise RunError(f"--out {out} already holds files that polytask report did not write "
                       f"({', '.join(sorted(entries)[:3])}{', ...' if len(entries) > 3 else ''})",
                       hint="choose an empty or new --out folder; polytask never overwrites files it did not write")
    try:
        written = set(json.loads(manifest.read_text(encoding="utf-8")).get("files", []))
    except (OSError, ValueError, AttributeError, TypeError):
        raise RunError(f"cannot read {manifest}", hint="choose a new --out folder") from None
    # Only plain names of files in `out` are ours to replace or delete: an edited manifest
    # naming ../report.json (or a folder) must not reach outside the report.
    written = {name for name in written if isinstance(name, str) and name not in ("", ".", "..")
               and Path(name).name == name and "\\" not in name and (out / name).is_file()}
    foreign = entries - written - {MANIFEST}
    if foreign:
        raise RunError(f"--out {out} holds files that polytask report did not write ({', '.join(sorted(foreign)[:3])})",
                       hint="move them away or choose another --out folder; polytask never overwrites files it did not write")
    return written


def write_report(run_dir, out: Optional[Path] = None, affinity: Optional[Path] = None) -> dict:
    """Write RUN_DIR's report page and figures into `out` (default RUN_DIR/report); returns what was written."""
    content = read_run(run_dir, affinity=affinity)
    _pyplot()  # without matplotlib, say so before creating the output folder
    out = Path(out) if out is not None else content.root / REPORT_DIR
    previous = _prepare_out(out)
    try:
        page, images = render(content, out)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:  # a hand-edited or damaged report.json
        raise RunError(f"cannot read {content.root}: a file has an unexpected shape "
                       f"({type(exc).__name__}: {exc})",
                       hint="the run directory looks damaged (check report.json); train again") from None
    (out / PAGE).write_text(page, encoding="utf-8")
    files = [PAGE] + images
    for stale in previous - set(files):  # figures of a previous report that this one no longer has
        (out / stale).unlink(missing_ok=True)
    (out / MANIFEST).write_text(json.dumps({"files": files}, indent=2) + "\n", encoding="utf-8")
    return {"page": str(out / PAGE), "images": [str(out / name) for name in images], "notices": content.notices}
