"""Benchmark `polytask check` over 100 specs: in-process and through the CLI.

    python bench/bench_check.py                 # print the table
    python bench/bench_check.py --write         # also update the "polytask check" section of docs/benchmarks.md

The 100 specs are generated into a temporary folder from five shapes (pooled/hard on
scikit-learn and synthetic data, hard on a csv file, meta sinusoid, protonet over an image
tree), so the data checks read real files. Target (issue 2): 100 specs well under a second
in-process.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
HEADING = "## polytask check"

TEMPLATES = [
    """polytask: 1
name: bench-{i}
seed: {i}
datasets:
  digits: {{source: sklearn, name: digits, split: {{train: 0.7, validation: 0.1, test: 0.2}}}}
tasks:
  digit: {{dataset: digits, target: target, loss: cross_entropy, metrics: [accuracy, top5_accuracy]}}
structure:
  sharing: pooled
  model: [{{dense: {{units: {units}, activation: relu}}}}, {{dropout: {{rate: 0.1}}}}]
training:
  steps: 1000
  optimizer: {{adam: {{learning_rate: 1.0e-3}}}}
  schedule: {{kind: cosine, warmup_steps: 10}}
""",
    """polytask: 1
name: bench-{i}
datasets:
  mmoe:
    source: synthetic
    generator: {{kind: mmoe, tasks: 3, input_dim: 32, correlation: 0.5}}
    samples: 1000
    split: {{train: 0.7, validation: 0.1, test: 0.2}}
tasks:
  a: {{dataset: mmoe, target: task_0, loss: mse, metrics: [rmse]}}
  b: {{dataset: mmoe, target: task_1, loss: mse, metrics: [rmse], weight: 2.0}}
  c: {{dataset: mmoe, target: task_2, loss: huber, metrics: [mae]}}
structure:
  sharing: hard
  trunk: [{{dense: {{units: {units}, activation: relu}}}}, {{layer_norm: {{}}}}]
  head: [{{dense: {{units: 8, activation: relu}}}}]
training:
  steps: 500
  sampling: {{temperature: 2.0}}
  weighting: [uncertainty, pcgrad]
  early_stopping: {{metric: a/rmse, patience: 3}}
""",
    """polytask: 1
name: bench-{i}
datasets:
  table: {{source: csv, path: table.csv, features: [f0, f1, f2, f3]}}
tasks:
  label: {{dataset: table, target: label, loss: cross_entropy, metrics: [accuracy]}}
  score: {{dataset: table, target: score, loss: mse, metrics: [r2]}}
structure:
  sharing: hard
  trunk: [{{dense: {{units: {units}, activation: relu}}}}]
training:
  steps: 200
  weighting: {{static: {{weights: {{label: 1.0, score: 0.5}}}}}}
""",
    """polytask: 1
name: bench-{i}
family: {{source: sinusoid, amplitude: [0.1, 5.0], phase: [0.0, 3.14159], shots: 10, queries: 10}}
loss: mse
metrics: [mse]
structure:
  sharing: meta
  algorithm: maml
  inner: {{steps: 1, learning_rate: 0.01, eval_steps: 10}}
  model: [{{dense: {{units: {units}, activation: relu}}}}, {{dense: {{units: 40, activation: relu}}}}]
training:
  steps: 70000
  meta_batch: 25
""",
    """polytask: 1
name: bench-{i}
datasets:
  shapes: {{source: image_folder, path: shapes, image_size: [28, 28], invert: true, class_depth: 2}}
family:
  source: classes
  dataset: shapes
  ways: 5
  shots: 1
  queries: 5
  rotations: [0, 90, 180, 270]
loss: cross_entropy
metrics: [accuracy]
structure:
  sharing: meta
  algorithm: protonet
  model:
    - conv2d: {{filters: {units}, kernel_size: 3, activation: relu}}
    - max_pool2d
    - flatten
training:
  steps: 1000
  meta_batch: 4
""",
]


def make_specs(folder: Path, count: int = 100) -> list[Path]:
    """Write `count` specs plus the data they use (a 1,000-row csv, a 40-class image tree)."""
    with open(folder / "table.csv", "w") as f:
        f.write("f0,f1,f2,f3,label,score\n")
        for r in range(1000):
            f.write(f"{r * 0.1:.2f},{r % 7 * 0.5:.2f},{r % 11:.1f},{(r * 37) % 101 / 10:.2f},{r % 4},{r * 0.01:.3f}\n")
    for a in range(4):
        for c in range(10):
            d = folder / "shapes" / f"alphabet{a}" / f"char{c:02d}"
            d.mkdir(parents=True, exist_ok=True)
            for k in range(8):
                (d / f"{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # listing only; never decoded
    paths = []
    for i in range(count):
        path = folder / f"spec_{i:03d}.yaml"
        path.write_text(TEMPLATES[i % len(TEMPLATES)].format(i=i, units=16 + i))
        paths.append(path)
    return paths


def bench_in_process(paths: list[Path], repeats: int, check_data: bool, cold: bool = True) -> list[float]:
    from polytask.spec import data_checks
    from polytask.spec.checker import check_file

    times = []
    for _ in range(repeats):
        if cold:
            data_checks._CACHE.clear()  # each run re-reads the data files once, as a fresh CLI process does
        start, cpu = time.perf_counter(), time.process_time()
        results = [check_file(p, check_data=check_data) for p in paths]
        times.append((time.perf_counter() - start, time.process_time() - cpu))
        bad = [r for r in results if not r.valid]
        assert not bad, "\n".join(str(d) for r in bad for d in r.diagnostics)
    return times


def bench_cli(folder: Path, repeats: int, extra: list[str]) -> list[float]:
    times = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), _children_cpu()
        proc = subprocess.run([sys.executable, "-m", "polytask", "check", str(folder), *extra],
                              capture_output=True, text=True)
        times.append((time.perf_counter() - start, _children_cpu() - cpu))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return times


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_startup(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run([sys.executable, "-m", "polytask", "--version"], capture_output=True, check=True)
        times.append((time.perf_counter() - start, _children_cpu() - cpu))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--write", action="store_true", help=f"update the '{HEADING}' section of {DOC}")
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_specs(folder, args.specs)
        import_start = time.perf_counter()
        import polytask.spec.checker  # noqa: F401  (import cost reported separately)

        import_seconds = time.perf_counter() - import_start
        bench_in_process(paths[:5], 1, True)  # warm caches (pydantic, imports of numpy for npz)
        rows = [
            ("in-process, data checks on (each data file read once)", bench_in_process(paths, args.repeats, True)),
            ("in-process, data checks on, probe cache warm", bench_in_process(paths, args.repeats, True, cold=False)),
            ("in-process, --no-data", bench_in_process(paths, args.repeats, False)),
            ("CLI `polytask check DIR` (one process)", bench_cli(folder, max(3, args.repeats // 2), [])),
            ("CLI `polytask check DIR --no-data`", bench_cli(folder, max(3, args.repeats // 2), ["--no-data"])),
            ("CLI start-up only (`polytask --version`)", bench_startup(max(3, args.repeats // 2))),
        ]

    n = args.specs
    lines = [
        HEADING,
        "",
        f"`python bench/bench_check.py --write` ({n} generated specs: pooled/hard on scikit-learn, synthetic and "
        "a 1,000-row csv; meta sinusoid; protonet over a 40-class image tree). Median of repeated runs; "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d')}, load average {load_at_start:.1f} at the start (the machine is shared; "
        f"numbers rise with load). Target: {n} specs well under a second in-process.",
        "",
        f"| what | {n} specs: wall (median) | per spec | CPU time (median) | fastest wall |",
        "|---|---|---|---|---|",
    ]
    for label, times in rows:
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        per = f"{wall / n * 1000:.2f} ms" if "start-up" not in label else "-"
        lines.append(f"| {label} | {wall:.3f} s | {per} | {cpu:.3f} s | {min(t[0] for t in times):.3f} s |")
    lines += ["", f"Importing `polytask.spec` (pydantic models) once: {import_seconds:.3f} s wall "
              "(part of every CLI run, not of the in-process rows). CPU time is less sensitive to a busy "
              "machine than wall time.", ""]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(section)
        print(f"updated {DOC}")


def write_section(section: str) -> None:
    """Replace our section of docs/benchmarks.md (up to the next `## `), keeping everyone else's."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nMeasured by hand with the scripts in bench/.\n"
    start = text.find(HEADING + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section.rstrip("\n") + ("\n" + text[end:] if end != -1 else "\n")
    DOC.write_text(text if text.endswith("\n") else text + "\n")


if __name__ == "__main__":
    main()
