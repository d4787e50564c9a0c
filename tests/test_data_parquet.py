"""parquet source: csv's column rules (missing labels masked), positioned errors, check without
TensorFlow, a clear message without pyarrow, and a spec that trains."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from cli_support import invoke  # noqa: E402
from data_support import describe, load  # noqa: E402
from polytask.errors import DataError  # noqa: E402


def _write(path, rows: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    b = rng.normal(size=rows)
    label = (a + b > 0).astype(np.int64)
    # A label column with nulls, written the way pandas writes it (float64 with NaN), and an
    # Arrow int column with nulls: both are labels with -1 where the value is missing.
    as_float = label.astype(np.float64)
    as_float[::7] = np.nan
    with_nulls = pa.array([None if i % 5 == 0 else int(v) for i, v in enumerate(label)], pa.int64())
    table = pa.table({"a": a, "b": b, "label": label, "label_float": as_float, "label_nulls": with_nulls,
                      "score": a - b, "name": [f"r{i}" for i in range(rows)],
                      "seq": pa.array([[float(i), float(i) + 1, float(i) + 2] for i in range(rows)],
                                      pa.list_(pa.float32(), 3))})
    pq.write_table(table, path)
    return label


def test_columns_follow_the_csv_rules(tmp_path):
    label = _write(tmp_path / "t.parquet")
    dataset = {"source": "parquet", "path": "t.parquet", "split": {"train": 0.5, "test": 0.5}}
    table = load(tmp_path, dataset)
    assert table.columns["label"].dtype == np.int64 and table.columns["label"].tolist() == label.tolist()
    expected_float = label.copy()
    expected_float[::7] = -1
    assert table.columns["label_float"].tolist() == expected_float.tolist()  # NaN in a label column -> -1
    expected_nulls = label.copy()
    expected_nulls[::5] = -1
    assert table.columns["label_nulls"].tolist() == expected_nulls.tolist()
    info = table.info
    assert info["label_float"].categorical and info["label_float"].num_classes == 2
    assert info["label_float"].missing == len(label[::7])
    assert info["a"].dtype == "float32" and not info["a"].categorical
    assert info["name"].dtype == "string"
    assert info["seq"].shape == (3,) and table.columns["seq"][4].tolist() == [4.0, 5.0, 6.0]
    assert describe(tmp_path, dataset) == info
    # default input: every non-target, non-text column, flattened and joined
    features = table.features(None, targets={"label", "label_float", "label_nulls", "score"})
    assert features.shape == (60, 1 + 1 + 3)


def test_infinite_value_and_missing_feature_are_positioned(tmp_path):
    pq.write_table(pa.table({"a": [1.0, float("inf"), 2.0], "y": [0, 1, 0]}), tmp_path / "inf.parquet")
    with pytest.raises(DataError, match=r"column 'a' has an infinite value \(row 1\)") as info:
        load(tmp_path, {"source": "parquet", "path": "inf.parquet"})
    assert info.value.where.endswith("inf.parquet")
    _write(tmp_path / "t.parquet")
    with pytest.raises(DataError, match="feature column 'aa' is not in t.parquet") as info:
        load(tmp_path, {"source": "parquet", "path": "t.parquet", "features": ["aa"]})
    assert "did you mean 'a'" in info.value.hint


def _spec(folder, target="label", steps=30):
    spec = {"polytask": 1, "name": "pq", "seed": 0,
            "datasets": {"table": {"source": "parquet", "path": "t.parquet", "features": ["a", "b"],
                                   "split": {"train": 0.6, "validation": 0.2, "test": 0.2}}},
            "tasks": {"cls": {"dataset": "table", "target": target, "loss": "cross_entropy", "metrics": ["accuracy"]},
                      "reg": {"dataset": "table", "target": "score", "loss": "mse"}},
            "structure": {"sharing": "hard", "trunk": [{"dense": {"units": 16, "activation": "relu"}}]},
            "training": {"steps": steps, "batch_size": 16, "eval_every": steps}}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_check_reads_the_schema_without_tensorflow(tmp_path):
    _write(tmp_path / "t.parquet")
    good = _spec(tmp_path, target="label_float")
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("target: label_float", "target: lable"))
    code = (
        "import sys, json; from polytask.cli import main\n"
        "try:\n    main(['check', '--format', 'json', sys.argv[1], sys.argv[2]])\n"
        "except SystemExit as e:\n    print('EXIT', e.code)\n"
        "print('TF', 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(good), str(bad)], capture_output=True, text=True, timeout=120)
    assert "TF False" in out.stdout, out.stdout + out.stderr
    report = json.loads(out.stdout[: out.stdout.index("EXIT")])
    by_file = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert by_file["spec.yaml"]["valid"], by_file["spec.yaml"]
    problems = by_file["bad.yaml"]["diagnostics"]
    assert problems[0]["code"] == "PT302" and "did you mean 'label'" in problems[0]["message"]
    assert problems[0]["line"] > 0


def test_without_pyarrow_the_message_names_the_extra(tmp_path):
    _write(tmp_path / "t.parquet")
    spec = _spec(tmp_path)
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
        "from polytask.cli import main\nmain(['check', sys.argv[1]])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "needs pyarrow" in out.stdout and "polytask[parquet]" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_a_parquet_spec_trains(tmp_path):
    _write(tmp_path / "t.parquet", rows=200)
    spec = _spec(tmp_path, target="label_nulls", steps=60)
    result = invoke("train", spec, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["steps"] == 60
    # label_nulls is missing on every fifth row: those rows are left out of that task only
    assert report["tasks"]["cls"]["unlabelled_train_rows"] > 0
    assert report["tasks"]["cls"]["train_examples"] < report["tasks"]["reg"]["train_examples"]
    assert {"cls/accuracy", "reg/loss"} <= set(report["metrics"]["test"])
    assert report["metrics"]["test"]["cls/accuracy"] > 0.7  # sign(a + b) is learnable from a and b
