"""Property test: mutated specs never crash `check`, and every diagnostic has a position.

Starting from the valid fixture specs and the `polytask init` starters, hypothesis drops,
renames and retypes keys, plants random scalars, and corrupts the bytes (insertions,
deletions, truncation, duplicated lines). Whatever comes out, `check` must return valid or
invalid (exit 0 or 1), never raise, never report an internal error (PT900), and give every
diagnostic a line and column inside the file.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from polytask.cli import main
from polytask.cli.init import starter_spec
from polytask.spec.registry import LOSSES
from polytask.spec.checker import check_source
from polytask.spec.diagnostics import has_errors

VALID = Path(__file__).parent / "specs" / "valid"
SEEDS = [p.read_text() for p in sorted(VALID.glob("*.yaml"))] + [
    starter_spec(pattern, "starter", "starter.yaml") for pattern in ("pooled", "hard", "meta")
]
SEED_DATA = [yaml.safe_load(text) for text in SEEDS]

KEYS = ["polytask", "name", "datasets", "tasks", "family", "structure", "training", "source", "sharing", "loss",
        "target", "dataset", "model", "trunk", "head", "dense", "units", "optimizer", "adam", "learning_rate",
        "weighting", "sampling", "steps", "shots", "ways", "queries", "path", "split", "train", "<<", "x-extra"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(KEYS + ["cross_entropy", "mse", "meta", "hard", "pooled", "sklearn", "csv", "digits", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=6,
)


def paths(node, prefix=()):
    """Every path to a value inside nested dicts and lists."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(prefix + (key,))
            out.extend(paths(value, prefix + (key,)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append(prefix + (i,))
            out.extend(paths(value, prefix + (i,)))
    return out


def parent_of(root, path):
    node = root
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated_spec(draw) -> bytes:
    index = draw(st.integers(0, len(SEEDS) - 1))
    data = copy.deepcopy(SEED_DATA[index])
    text_only = draw(st.booleans()) and draw(st.booleans())  # 1/4: corrupt the original text (comments kept)
    if not text_only:
        for _ in range(draw(st.integers(1, 4))):
            candidates = paths(data)
            if not candidates:
                break
            path = draw(st.sampled_from(candidates))
            parent, last = parent_of(data, path), path[-1]
            action = draw(st.sampled_from(["drop", "rename", "retype", "retype", "add"]))
            if action == "drop":
                del parent[last]
            elif action == "rename" and isinstance(parent, dict):
                new = draw(st.one_of(st.text(min_size=1, max_size=10), st.sampled_from(KEYS),
                                     st.just(str(last)[:-1] or "x"), st.just(str(last) + "s")))
                parent[new] = parent.pop(last)
            elif action == "add" and isinstance(parent, dict):
                parent[draw(st.sampled_from(KEYS))] = draw(values)
            else:
                parent[last] = draw(values)
        try:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        except (yaml.YAMLError, ValueError, OverflowError):
            text = SEEDS[index]
    else:
        text = SEEDS[index]
    raw = text.encode("utf-8")
    for _ in range(draw(st.integers(0, 2) if not text_only else st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "truncate", "duplicate_line", "replace"]))
        at = draw(st.integers(0, len(raw)))
        if kind == "insert":
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
        elif kind == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 20)):]
        elif kind == "truncate":
            raw = raw[:at]
        elif kind == "replace":
            raw = raw[:at] + draw(st.sampled_from([b":", b"-", b" ", b"\t", b"[", b"{", b"&a", b"*a", b"!!", b"'",
                                                    b"\n", b"#", b"<<: "])) + raw[at + 1:]
        else:
            lines = raw.split(b"\n")
            i = draw(st.integers(0, max(0, len(lines) - 1)))
            lines.insert(i, lines[i] if lines else b"")
            raw = b"\n".join(lines)
    return raw


def assert_well_formed(raw: bytes, result) -> None:
    line_count = raw.count(b"\n") + 1
    for d in result.diagnostics:
        assert d.code != "PT900", f"internal error: {d}\n--- spec ---\n{raw!r}"
        assert d.line is not None and 1 <= d.line <= line_count + 1, (str(d), raw)
        assert d.column is not None and d.column >= 1, str(d)
        assert d.message and d.severity in ("error", "warning", "info")
    assert result.valid == (not has_errors(result.diagnostics) and result.spec is not None)
    if not result.valid:
        assert has_errors(result.diagnostics), "invalid without an error diagnostic"


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_spec())
def test_mutated_specs_never_crash_and_always_have_positions(raw: bytes):
    result = check_source(raw, "mutated.yaml", VALID)
    assert_well_formed(raw, result)
    # `pytest --hypothesis-show-statistics` shows which stages the mutations reach
    event("valid" if result.valid else "invalid")
    for stage in sorted({d.code[:3] for d in result.diagnostics if d.is_error}):
        event(f"errors from {stage}xx")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_spec())
def test_mutated_specs_through_the_cli_exit_0_or_1(raw: bytes):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=None):
        Path("spec.yaml").write_bytes(raw)
        result = runner.invoke(main, ["check", "--no-data", "--format", "json", "spec.yaml"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    import json

    document = json.loads(result.output)
    assert document["valid"] == (result.exit_code == 0)
    for d in document["files"][0]["diagnostics"]:
        assert isinstance(d["line"], int) and d["line"] >= 1


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_unmutated_seeds_are_valid(seed):
    result = check_source(SEEDS[seed].encode(), "seed.yaml", VALID)
    assert result.valid, [str(d) for d in result.diagnostics]


def test_nan_and_huge_numbers_are_diagnostics():
    text = (VALID / "csv_hard.yaml").read_text().replace("steps: 50", "steps: .nan").replace("batch_size: 8", f"batch_size: {2**80}")
    result = check_source(text, "x.yaml", VALID)
    assert not result.valid and {d.code for d in result.diagnostics} <= {"PT103", "PT104"}
    assert sorted(d.line for d in result.diagnostics) == [21, 22]


# Schema-valid recombinations: swap values for other *allowed* ones, so most cases reach the
# cross-field rules and data checks (the mutations above mostly stop at YAML or schema level).
CHOICES = {
    "loss": LOSSES.names(),
    "sharing": ["pooled", "hard", "meta"],
    "target": ["target", "task_0", "task_1", "label", "score", "y", "z", "image", "x"],
    "dataset": ["digits", "table", "arrays", "shapes", "mmoe", "waves", "nope"],
    "metrics": [[], ["accuracy"], ["auc"], ["mse", "r2"], ["top5_accuracy"], ["accuracy", "accuracy"]],
    "algorithm": ["maml", "fomaml", "reptile", "anil", "metasgd", "protonet"],
    "descriptor": ["none", "onehot", "embedding"],
    "ways": [2, 3, 5, 50], "shots": [1, 2, 5], "queries": [1, 3, 19],
    "features": [["x"], ["a", "b"], ["image"], ["label"], ["missing"]],
    "weighting": ["equal", "uncertainty", ["gradnorm", "pcgrad"], {"static": {"weights": {"nope": 1.0}}}],
    "rotations": [[0], [0, 90, 180, 270], [0, 0]],
    "class_split": [{"train": 1.0, "validation": 0.0, "test": 0.0}, {"train": 0.4, "validation": 0.3, "test": 0.3}],
}
EXTRA_DATASETS = {
    "digits": {"source": "sklearn", "name": "digits"},
    "table": {"source": "csv", "path": "../data/table.csv"},
    "arrays": {"source": "npz", "path": "../data/arrays.npz"},
    "shapes": {"source": "image_folder", "path": "../data/shapes", "image_size": [4, 4]},
    "mmoe": {"source": "synthetic", "generator": {"kind": "mmoe", "tasks": 2}},
    "waves": {"source": "synthetic", "generator": {"kind": "sinusoid", "tasks": 2}},
}


@st.composite
def recombined_spec(draw) -> dict:
    data = copy.deepcopy(draw(st.sampled_from(SEED_DATA)))
    data.setdefault("datasets", {})
    for name in draw(st.lists(st.sampled_from(sorted(EXTRA_DATASETS)), max_size=3, unique=True)):
        data["datasets"][name] = copy.deepcopy(EXTRA_DATASETS[name])
    for _ in range(draw(st.integers(1, 6))):
        candidates = [p for p in paths(data) if str(p[-1]) in CHOICES]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent_of(data, path)[path[-1]] = copy.deepcopy(draw(st.sampled_from(CHOICES[str(path[-1])])))
    if draw(st.booleans()):
        structure = data.setdefault("structure", {"sharing": "pooled"})
        structure["sharing"] = draw(st.sampled_from(CHOICES["sharing"]))
        structure.setdefault("model", [{"dense": {"units": 4}}])
        structure.setdefault("trunk", [{"dense": {"units": 4}}])
        for key in ("model", "trunk", "head", "descriptor", "embedding_dim", "algorithm", "inner",
                    "reptile_step_size"):
            allowed = {"pooled": {"model", "descriptor", "embedding_dim"}, "hard": {"trunk", "head"},
                       "meta": {"model", "algorithm", "inner", "reptile_step_size"}}[structure["sharing"]]
            if key not in allowed:
                structure.pop(key, None)
        if structure["sharing"] == "meta":
            structure.setdefault("algorithm", draw(st.sampled_from(CHOICES["algorithm"])))
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(recombined_spec())
def test_recombined_specs_reach_the_rules_without_crashing(data):
    raw = yaml.safe_dump(data, sort_keys=False).encode()
    result = check_source(raw, "recombined.yaml", VALID)
    assert_well_formed(raw, result)
    event("valid" if result.valid else "invalid")
    for stage in sorted({d.code[:3] for d in result.diagnostics if d.is_error}):
        event(f"errors from {stage}xx")
