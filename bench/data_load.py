"""Timing for the data layer: what loading costs, and whether a disk cache would pay.

Measures, in one process:
  * Omniglot (../shared/data/omniglot zips): listing (describe), cold decode + resize of every
    PNG, a second load (the per-process cache), and for comparison what an on-disk .npz
    cache of the decoded array would cost to write and read back;
  * csv: parsing a generated numeric file (rows x columns given), cold and cached;
  * the synthetic generators at their default sizes.
Usage:  python bench/data_load.py [--csv-rows 100000] [--csv-columns 20] [--image-size 28]
Prints one JSON object; docs/data-sources.md records the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from polytask.compiler.data import describe_table, load_table
from polytask.compiler.data.files import clear_cache
from polytask.spec.loader import LoadedSpec
from polytask.spec.models import Spec

SHARED = Path(os.environ.get("POLYTASK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _loaded(folder: Path, dataset: dict) -> LoadedSpec:
    spec = Spec.model_validate({"polytask": 1, "name": "bench", "datasets": {"d": dataset}})
    return LoadedSpec(spec=spec, path=folder / "spec.yaml")


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def omniglot(image_size: int, repeats: int) -> dict:
    results = {}
    for archive in sorted((SHARED / "omniglot").glob("images_background_small*.zip")):
        loaded = _loaded(archive.parent, {
            "source": "image_folder", "path": str(archive), "class_depth": 2,
            "invert": True, "image_size": [image_size, image_size],
        })
        dataset = loaded.spec.datasets["d"]
        describe_times, cold_times = [], []
        for _ in range(repeats):  # the machine is shared: report the median of cold runs
            clear_cache()
            info, t_describe = _timed(lambda: describe_table("d", dataset, loaded))
            table, t_cold = _timed(lambda: load_table("d", dataset, loaded))
            describe_times.append(t_describe)
            cold_times.append(t_cold)
        t_describe, t_cold = float(np.median(describe_times)), float(np.median(cold_times))
        _, t_warm = _timed(lambda: load_table("d", dataset, loaded))
        with tempfile.TemporaryDirectory() as tmp:
            cache_file = Path(tmp) / "cache.npz"
            _, t_write = _timed(lambda: np.savez(cache_file, image=table.columns["image"], label=table.columns["label"]))
            _, t_read = _timed(lambda: np.load(cache_file)["image"].sum())
        results[archive.name] = {
            "images": table.num_rows, "classes": info["label"].num_classes,
            "describe_s": round(t_describe, 4), "decode_s": round(t_cold, 3),
            "decode_s_min": round(min(cold_times), 3),
            "per_image_ms": round(1000 * t_cold / table.num_rows, 3),
            "cached_load_s": round(t_warm, 4),
            "npz_cache_write_s": round(t_write, 4), "npz_cache_read_s": round(t_read, 4),
            "array_mb": round(table.columns["image"].nbytes / 2**20, 1),
        }
    return results


def csv_parse(rows: int, columns: int) -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = rng.normal(size=(rows, columns))
        labels = rng.integers(0, 10, size=rows)
        header = ",".join([f"f{i}" for i in range(columns)] + ["label"])
        lines = [header] + [",".join(f"{v:.6g}" for v in row) + f",{y}" for row, y in zip(data, labels)]
        (folder / "d.csv").write_text("\n".join(lines) + "\n")
        size_mb = (folder / "d.csv").stat().st_size / 2**20
        clear_cache()
        loaded = _loaded(folder, {"source": "csv", "path": "d.csv"})
        dataset = loaded.spec.datasets["d"]
        _, t_cold = _timed(lambda: load_table("d", dataset, loaded))
        _, t_warm = _timed(lambda: load_table("d", dataset, loaded))
    return {"rows": rows, "columns": columns + 1, "file_mb": round(size_mb, 1),
            "parse_s": round(t_cold, 3), "cached_load_s": round(t_warm, 4)}


def generators() -> dict:
    out = {}
    for generator in ({"kind": "sinusoid"}, {"kind": "gradnorm_toy"}, {"kind": "mmoe"}):
        loaded = _loaded(Path("."), {"source": "synthetic", "generator": generator, "samples": 10000})
        _, seconds = _timed(lambda: load_table("d", loaded.spec.datasets["d"], loaded))
        out[f"{generator['kind']} (10000 rows)"] = round(seconds, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-rows", type=int, default=100_000)
    parser.add_argument("--csv-columns", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "omniglot": omniglot(args.image_size, args.repeats),
        "csv": csv_parse(args.csv_rows, args.csv_columns),
        "generators_s": generators(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
