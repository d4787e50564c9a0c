"""`polytask evaluate RUN_DIR` on meta runs: episodes with CIs, and few-shot on hand-made folders."""
from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402

from polytask.cli import main  # noqa: E402
from polytask.compiler.meta import compile_program  # noqa: E402
from polytask.errors import DataError  # noqa: E402
from polytask.runtime.loop import LoopSettings, fit  # noqa: E402
from polytask.runtime.meta_eval import evaluate_meta_run, render_text  # noqa: E402
from polytask.runtime.strategy import create_strategy  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

from meta_helpers import class_spec, glyph, sinusoid_spec, write_image_classes  # noqa: E402


def _train(spec_path, run_dir, steps):
    program = compile_program(load_spec(spec_path), strategy=create_strategy("one_device"), jit_compile=False)
    fit(program, run_dir, LoopSettings(steps=steps, eval_every=10**6, checkpoint_every=10**6, quiet=True))
    return program


@pytest.fixture(scope="module")
def protonet_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("protonet")
    data = write_image_classes(root / "data", classes=8, per_class=8)
    spec = class_spec(root, data, "protonet", ways=3, shots=1, queries=3, steps=40)
    program = _train(spec, root / "run", 40)
    return root / "run", program


def _save(path, array, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), mode).save(path)


def _task(root, kinds, shots=1, queries=2, size=28, seed=7):
    """support/<name>/i.png and query/<name>/i.png for glyph kinds never grouped like this in training."""
    rng = np.random.default_rng(seed)
    names = [f"glyph_{k}" for k in kinds]
    for name, k in zip(names, kinds):
        for i in range(shots):
            _save(root / "support" / name / f"s{i}.png", 255 - glyph(k, size, rng))
        for i in range(queries):
            _save(root / "query" / name / f"q{i}.png", 255 - glyph(k, size, rng))
    return root / "support", root / "query"


def test_episodes_report_mean_and_confidence_interval(protonet_run):
    run, _ = protonet_run
    result = evaluate_meta_run(run, episodes=30, ways=2, shots=2)
    assert result["mode"] == "episodes" and result["episodes"] == 30
    assert result["ways"] == 2 and result["shots"] == 2
    point = result["curve"][-1]
    assert 0.0 <= point["accuracy"]["mean"] <= 1.0 and point["accuracy"]["ci95"] >= 0
    assert "meta-test: 30 episodes, 2-way 2-shot" in render_text(result)


def test_few_shot_on_hand_made_folders(protonet_run, tmp_path):
    run, _ = protonet_run
    support, query = _task(tmp_path, kinds=[0, 3, 6])
    result = evaluate_meta_run(run, support=support, query=query)
    assert result["classes"] == ["glyph_0", "glyph_3", "glyph_6"]
    assert result["support_images"] == {"glyph_0": 1, "glyph_3": 1, "glyph_6": 1}
    assert len(result["predictions"]) == 6
    assert {p["file"] for p in result["predictions"]} == {f"glyph_{k}/q{i}.png" for k in (0, 3, 6) for i in range(2)}
    assert result["accuracy"] == pytest.approx(np.mean([p["correct"] for p in result["predictions"]]))
    assert result["accuracy"] >= 0.5  # one image per class is enough for these glyphs
    # a query set with only some of the support classes is fine
    (query / "glyph_6" / "q0.png").unlink()
    (query / "glyph_6" / "q1.png").unlink()
    (query / "glyph_6").rmdir()
    assert len(evaluate_meta_run(run, support=support, query=query)["predictions"]) == 4


def test_few_shot_cli_json_and_resize_notice(protonet_run, tmp_path):
    run, _ = protonet_run
    support, query = _task(tmp_path, kinds=[1, 4], size=56)
    result = CliRunner().invoke(main, ["evaluate", str(run), "--support", str(support), "--query", str(query),
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{"):])
    assert payload["query_images"] == 4
    assert any("resized from 56x56 to 28x28" in n for n in payload["notices"])


@pytest.mark.parametrize("problem,message", [
    ("query_class_missing", "query class 'glyph_9' has no folder in the support set"),
    ("empty_class", "is empty"),
    ("color_image", "color image"),
    ("garbage", "cannot read image"),
    ("one_class", "needs at least two"),
])
def test_mismatched_inputs_are_clear_errors(protonet_run, tmp_path, problem, message):
    run, _ = protonet_run
    support, query = _task(tmp_path, kinds=[0, 3])
    if problem == "query_class_missing":
        _save(query / "glyph_9" / "q.png", 255 - glyph(5))
    elif problem == "empty_class":
        (support / "glyph_5").mkdir()
    elif problem == "color_image":
        colored = np.stack([255 - glyph(0), np.zeros((28, 28)), 255 - glyph(0)], -1)
        _save(support / "glyph_0" / "color.png", colored, "RGB")
    elif problem == "garbage":
        (query / "glyph_3" / "broken.png").write_bytes(b"not a png at all")
    elif problem == "one_class":
        for f in (support / "glyph_3").iterdir():
            f.unlink()
        (support / "glyph_3").rmdir()
        for f in (query / "glyph_3").iterdir():
            f.unlink()
        (query / "glyph_3").rmdir()
    with pytest.raises(DataError, match=message):
        evaluate_meta_run(run, support=support, query=query)
    cli = CliRunner().invoke(main, ["evaluate", str(run), "--support", str(support), "--query", str(query)])
    assert cli.exit_code == 1 and "error:" in cli.output and "Traceback" not in cli.output
    assert "hint:" in cli.output


def test_regression_few_shot_from_csv_and_npz(tmp_path):
    run = tmp_path / "run"
    program = _train(sinusoid_spec(tmp_path, "maml", steps=30, meta_batch=5), run, 30)
    x = np.linspace(-4, 4, 10)
    (tmp_path / "support.csv").write_text("x,y\n" + "".join(f"{a},{2 * np.sin(a - 1)}\n" for a in x))
    np.savez(tmp_path / "query.npz", x=np.array([0.5, 1.5, 2.5]), y=2 * np.sin(np.array([0.5, 1.5, 2.5]) - 1))
    result = evaluate_meta_run(run, support=tmp_path / "support.csv", query=tmp_path / "query.npz")
    assert result["support_points"] == 10 and len(result["predictions"]) == 3
    sx = x[:, None].astype(np.float32)
    expected = program.predict(sx, (2 * np.sin(sx - 1)).astype(np.float32), np.array([[0.5], [1.5], [2.5]], np.float32))
    assert [p["predicted"] for p in result["predictions"]] == pytest.approx(expected[:, 0].tolist(), abs=1e-4)
    assert result["mse"] == pytest.approx(float(np.mean((expected[:, 0] - [p["y"] for p in result["predictions"]]) ** 2)),
                                          rel=1e-4)
    (tmp_path / "bad.csv").write_text("x,y\n1,abc\n")
    with pytest.raises(DataError, match="bad.csv:2: column 'y' is not a number"):
        evaluate_meta_run(run, support=tmp_path / "bad.csv", query=tmp_path / "query.npz")
    with pytest.raises(DataError, match="regression family"):
        evaluate_meta_run(run, support=tmp_path, query=tmp_path / "query.npz")


def test_saved_model_of_a_batch_norm_model_matches_the_program(protonet_run):
    run, program = protonet_run
    batch = program.sampler.sample("test", tf.constant(1, tf.int64), 2)
    loaded = tf.saved_model.load(str(run / "saved_model"))
    out = loaded.signatures["adapt_and_predict"](support_x=batch["support_x"], support_y=batch["support_y"],
                                                 query_x=batch["query_x"])["outputs"]
    theta, extra = program.parameters.read()
    expected = program.algorithm.predict(theta, extra, batch["support_x"], batch["support_y"], batch["query_x"],
                                         ways=program.description.ways)
    assert out.shape == expected.shape == (2, 9, 3)
    assert float(tf.reduce_max(tf.abs(out - expected))) < 1e-3
