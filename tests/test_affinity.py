"""`polytask affinity`: the lookahead against the paper's equations, the CLI outputs, and known groupings."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from multitask_support import load_program, spec_dict, write_spec
from polytask.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_vectorised_probe_equals_the_papers_lookahead_step_by_step(tmp_path):
    """Z[i][j] = 1 - L_j(theta_s - lr grad_s L_i) / L_j(theta_s), one eager pass per i as reference."""
    import tensorflow as tf

    from polytask.compiler.affinity.lookahead import LookaheadProbe, affinity_from

    program = load_program(write_spec(tmp_path, spec_dict(steps=10)), seed=0)
    for _ in range(3):
        program.train_step()
    probe = LookaheadProbe(program)
    batch = program.next_batch()
    rate = 0.05
    losses, after, counts = probe(batch, rate)
    z, valid = affinity_from(losses.numpy(), after.numpy(), counts.numpy())
    assert valid.all()

    x, labels, task = batch
    shared = probe.shared
    assert shared and all(any(v is s for s in program.net.shared_variables()) for v in shared)
    start = [v.numpy() for v in shared]
    heads_before = [v.numpy() for v in program.net.trainable_variables if not any(v is s for s in shared)]

    def task_losses():
        outputs = program.net(x, task, training=False)
        return program.task_losses(outputs, labels, task)[0]

    base = task_losses().numpy()
    np.testing.assert_allclose(base, losses.numpy(), rtol=1e-5)
    reference = np.zeros_like(z)
    for i in range(len(base)):
        with tf.GradientTape() as tape:
            loss_i = task_losses()[i]
        grads = tape.gradient(loss_i, shared)
        for variable, value, grad in zip(shared, start, grads):
            variable.assign(value - rate * grad.numpy())
        reference[i] = 1.0 - task_losses().numpy() / base
        for variable, value in zip(shared, start):
            variable.assign(value)
    np.testing.assert_allclose(z, reference, rtol=2e-3, atol=2e-6)
    assert np.abs(reference).max() > 1e-3  # the check compares something
    # probing leaves the model untouched
    for before, v in zip(heads_before, [v for v in program.net.trainable_variables if not any(v is s for s in shared)]):
        np.testing.assert_array_equal(before, v.numpy())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("affinity")
    return write_spec(folder, spec_dict(steps=40))


def test_json_output_has_exactly_the_documented_keys(tiny, tmp_path):
    result = _invoke("affinity", str(tiny), "--steps", "20", "--every", "2", "--format", "json", "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) == {"tasks", "affinity", "groups", "steps"}
    assert document["tasks"] == ["a", "b", "c"] and document["steps"] == 20
    matrix = np.array(document["affinity"])
    assert matrix.shape == (3, 3) and np.isfinite(matrix).all()
    assert sorted(t for g in document["groups"] for t in g) == ["a", "b", "c"]
    saved = json.loads((tmp_path / "a" / "affinity.json").read_text())
    assert saved["affinity"] == document["affinity"] and saved["measurements"] == 10
    png = (tmp_path / "a" / "affinity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # never overwrite: the second run is refused before it trains
    again = _invoke("affinity", str(tiny), "--steps", "20", "--out", str(tmp_path / "a"))
    assert again.exit_code == 1 and "already exists" in again.output and "Traceback" not in again.output


@pytest.mark.slow
def test_text_table_and_group_specs_that_pass_check(tiny, tmp_path):
    out = tmp_path / "specs"
    result = _invoke("affinity", str(tiny), "--steps", "20", "--groups", "3", "--spec-out", str(out))
    assert result.exit_code == 0, result.output
    assert "inter-task affinity (hard sharing, 20 steps" in result.output
    assert "suggested groups (exact search" in result.output
    written = sorted(out.glob("*.yaml"))
    assert written
    tasks = []
    for path in written:
        content = yaml.safe_load(path.read_text())
        tasks += list(content["tasks"])
        assert Path(content["datasets"]["table"]["path"]).is_absolute()
    assert sorted(tasks) == ["a", "b", "c"]
    check = _invoke("check", *map(str, written))
    assert check.exit_code == 0, check.output
    assert "0 warnings" in check.output
    train = _invoke("train", str(written[0]), "--out", str(tmp_path / "run"), "--steps", "5", "--quiet")
    assert train.exit_code == 0, train.output


def test_bad_arguments_and_meta_specs_are_refused(tiny, tmp_path):
    assert _invoke("affinity", str(tiny), "--groups", "zero").exit_code == 2
    assert _invoke("affinity", str(tiny), "--every", "0").exit_code == 2
    penalty = _invoke("affinity", str(tiny), "--groups", "2", "--penalty", "0.5")
    assert penalty.exit_code == 2 and "--groups auto" in penalty.output
    missing = _invoke("affinity", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "no such spec file" in missing.output  # a usage error, as in check
    meta = Path(__file__).resolve().parent.parent / "examples" / "meta" / "sinusoid_maml.yaml"
    refused = _invoke("affinity", str(meta))
    assert refused.exit_code == 1 and "meta spec" in refused.output and "Traceback" not in refused.output
    as_json = _invoke("affinity", str(meta), "--format", "json")
    assert as_json.exit_code == 1 and "meta spec" in json.loads(as_json.output)["error"]["message"]


def test_heatmap_is_written_for_thirty_tasks(tmp_path):
    from polytask.runtime.affinity import heatmap

    rng = np.random.default_rng(0)
    tasks = [f"task_{i:02d}" for i in range(30)]
    heatmap({"tasks": tasks, "affinity": (1e-3 * rng.normal(size=(30, 30))).tolist()}, tmp_path / "h.png")
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "h.png")
    assert image.shape[0] > 1200 and image.shape[1] > 1200  # ~0.42 in (46 px) per cell at 30 tasks


# --------------------------------------------------------------------------- known groupings


# Linear heads on one shared layer, measured over the first 150 steps (while the tasks are
# still being learned, related tasks pull the shared layer the same way).
NARROW_TRUNK = {
    "structure": {"sharing": "hard", "trunk": [{"dense": {"units": 32, "activation": "relu"}}], "head": []},
    "training": {"steps": 150, "batch_size": 256, "optimizer": {"adam": {"learning_rate": 0.003}}},
}


def mmoe_two_groups_spec(seed: int) -> dict:
    """Two MMoE data sets (generator correlation 0.9 inside each); their directions are unrelated."""
    generator = {"kind": "mmoe", "input_dim": 20, "correlation": 0.95, "sine_terms": 2, "noise": 0.1}
    return {
        "polytask": 1, "name": "mmoe-groups", "seed": seed,
        "datasets": {
            "one": {"source": "synthetic", "generator": {**generator, "tasks": 2}, "samples": 800},
            "two": {"source": "synthetic", "generator": {**generator, "tasks": 3}, "samples": 800},
        },
        "tasks": {
            "a0": {"dataset": "one", "target": "task_0", "loss": "mse"},
            "a1": {"dataset": "one", "target": "task_1", "loss": "mse"},
            "b0": {"dataset": "two", "target": "task_0", "loss": "mse"},
            "b1": {"dataset": "two", "target": "task_1", "loss": "mse"},
        },
        **NARROW_TRUNK,
    }


def designed_csv(path: Path, seed: int = 0, rows: int = 600) -> Path:
    """Tasks p, q: two noisy copies of one function of f0..f3; r, s: of another function, of f4..f7."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))
    first = np.tanh(x[:, :4] @ rng.normal(size=4))
    second = np.tanh(x[:, 4:] @ rng.normal(size=4))
    columns = {"p": first + 0.05 * rng.normal(size=rows), "q": first + 0.05 * rng.normal(size=rows),
               "r": second + 0.05 * rng.normal(size=rows), "s": second + 0.05 * rng.normal(size=rows)}
    lines = [",".join([f"f{i}" for i in range(8)] + list(columns))]
    for k in range(rows):
        lines.append(",".join([f"{v:.5f}" for v in x[k]] + [f"{columns[c][k]:.5f}" for c in columns]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def designed_spec(seed: int) -> dict:
    return {
        "polytask": 1, "name": "designed", "seed": seed,
        "datasets": {"table": {"source": "csv", "path": "designed.csv"}},
        "tasks": {name: {"dataset": "table", "target": name, "loss": "mse",
                         "features": [f"f{i}" for i in range(8)]} for name in "pqrs"},
        "structure": NARROW_TRUNK["structure"],
        "training": {**NARROW_TRUNK["training"], "steps": 400, "optimizer": {"adam": {"learning_rate": 0.01}}},
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", ["mmoe", "designed"])
def test_suggested_groups_are_the_known_ones_over_three_seeds(case, tmp_path):
    from polytask.runtime.affinity import measure_affinity, named_groups, suggest_groups
    from polytask.spec.loader import load_spec

    expected = ({"a0", "a1"}, {"b0", "b1"}) if case == "mmoe" else ({"p", "q"}, {"r", "s"})
    if case == "designed":
        designed_csv(tmp_path / "designed.csv")
    for seed in range(3):
        spec = mmoe_two_groups_spec(seed) if case == "mmoe" else designed_spec(seed)
        path = tmp_path / f"{case}_{seed}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        result = measure_affinity(load_spec(path, check_data=True), every=1)
        for groups in (2, "auto"):
            found = suggest_groups(result, groups=groups)
            assert sorted(map(sorted, named_groups(result, found))) == sorted(map(sorted, expected)), \
                (seed, groups, np.round(np.array(result["affinity"]), 5))
