"""tfds source: fields and builder names checked without TensorFlow, TFDS splits mapped onto
polytask's, features by path, a multi-task spec and a few-shot family (TFDS omniglot) that
train, all offline under `tfds.testing.mock_data` with examples the tests write."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

tfds = pytest.importorskip("tensorflow_datasets")

from cli_support import invoke  # noqa: E402
from data_support import load  # noqa: E402
from polytask.compiler.data.files import clear_cache  # noqa: E402
from polytask.errors import DataError  # noqa: E402


def _mnist_examples(split: str, count: int):
    """Images whose brightest row is the label: learnable, unlike the default mock's noise."""
    rng = np.random.default_rng(len(split))
    for i in range(count):
        label = i % 10
        image = rng.integers(0, 40, size=(28, 28, 1)).astype(np.uint8)
        image[2 + 2 * label] = 255
        yield {"image": image, "label": label}


def _fake_as_dataset(examples):
    import tensorflow as tf

    def as_dataset(self, split, **kwargs):
        features = self.info.features
        name = str(split)
        return tf.data.Dataset.from_generator(lambda: examples(name), output_signature=features.get_tensor_spec())

    return as_dataset


@pytest.fixture
def mock_mnist():
    clear_cache()
    with tfds.testing.mock_data(as_dataset_fn=_fake_as_dataset(lambda split: _mnist_examples(split, 200))):
        yield
    clear_cache()


def test_splits_and_features_by_path(tmp_path, mock_mnist):
    dataset = {"source": "tfds", "name": "mnist", "splits": {"train": "train", "test": "test"}, "limit": 50}
    table = load(tmp_path, dataset)
    assert table.num_rows == 100
    assert len(table.rows("train")) == 50 and len(table.rows("test")) == 50
    assert len(table.rows("validation", required=False)) == 0
    assert table.columns["image"].shape == (100, 28, 28, 1) and table.columns["image"].dtype == np.float32
    assert 0.0 <= table.columns["image"].min() and table.columns["image"].max() == pytest.approx(1.0)
    label = table.info["label"]
    assert label.categorical and label.num_classes == 10 and table.class_names[:3] == ["0", "1", "2"]
    # the brightest row of each image is its label, as written
    rows = table.columns["image"][:, :, :, 0].mean(axis=2).argmax(axis=1)
    assert ((rows - 2) // 2).tolist() == table.columns["label"].tolist()
    resized = load(tmp_path, {**dataset, "image_size": [14, 14], "grayscale": False, "invert": True})
    assert resized.columns["image"].shape == (100, 14, 14, 3)


def test_data_not_prepared_is_a_positioned_error_that_offers_download(tmp_path):
    # (tfds.testing.mock_data accepts any split name, so a wrong split name cannot be mocked;
    # without the mock and without prepared data TFDS refuses, and polytask never downloads.)
    clear_cache()
    with pytest.raises(DataError, match="cannot read split 'train' of mnist") as info:
        load(tmp_path, {"source": "tfds", "name": "mnist", "data_dir": "tfds_data", "splits": {"train": "train"}})
    assert "download: true" in info.value.hint and "tfds build mnist" in info.value.hint
    assert "splits" in str(info.value.where)
    assert not (tmp_path / "tfds_data" / "downloads").exists()


def _write(folder, spec, name="spec.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _mnist_spec(**dataset):
    return {"polytask": 1, "name": "tfds-mnist", "seed": 0,
            "datasets": {"digits": {"source": "tfds", "name": "mnist", "splits": {"train": "train", "test": "test"},
                                    "features": ["image"], **dataset}},
            "tasks": {"digit": {"dataset": "digits", "target": "label", "loss": "cross_entropy",
                                "metrics": ["accuracy"]}},
            "structure": {"sharing": "hard", "trunk": [{"flatten": {}}, {"dense": {"units": 32, "activation": "relu"}}]},
            "training": {"steps": 60, "batch_size": 32, "eval_every": 60}}


FAMILY = {"polytask": 1, "name": "tfds-omniglot", "seed": 0,
          "datasets": {"omniglot": {"source": "tfds", "name": "omniglot", "splits": {"train": "train"},
                                    "image_size": [12, 12], "grayscale": True, "invert": True}},
          "family": {"source": "classes", "dataset": "omniglot", "ways": 3, "shots": 1, "queries": 2,
                     "class_split": {"train": 0.6, "validation": 0.2, "test": 0.2}},
          "loss": "cross_entropy", "metrics": ["accuracy"],
          "structure": {"sharing": "meta", "algorithm": "protonet",
                        "model": [{"conv2d": {"filters": 8}}, {"max_pool2d": {}}, {"flatten": {}}]},
          "training": {"steps": 20, "meta_batch": 2, "eval_every": 20, "eval_episodes": 4}}


def test_check_validates_without_tensorflow(tmp_path):
    specs = {
        "good.yaml": _mnist_spec(),
        "typo.yaml": _mnist_spec(name="mnst"),
        "version.yaml": _mnist_spec(version="three"),
        "both.yaml": _mnist_spec(split={"train": 0.5, "test": 0.5}),
        "family.yaml": FAMILY,
        "family_shape.yaml": {**FAMILY, "datasets": {"omniglot": {"source": "tfds", "name": "omniglot"}}},
    }
    paths = [str(_write(tmp_path, spec, name)) for name, spec in specs.items()]
    code = ("import sys; from polytask.cli import main\n"
            "try:\n    main(['check', '--format', 'json', *sys.argv[1:]])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('TF', 'tensorflow' in sys.modules or 'tensorflow_datasets' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120)
    assert "TF False" in out.stdout, out.stdout + out.stderr
    report = json.loads(out.stdout[: out.stdout.index("EXIT")])
    by_name = {f["path"].rsplit("/", 1)[-1]: f["diagnostics"] for f in report["files"]}
    assert by_name["good.yaml"] == [] and by_name["family.yaml"] == []
    typo = by_name["typo.yaml"][0]
    assert "unknown TFDS builder 'mnst' (did you mean 'mnist'?)" in typo["message"]
    assert typo["path"] == "datasets.digits.name" and typo["line"] == 7  # the `name:` line of the dataset
    assert by_name["version.yaml"][0]["path"] == "datasets.digits.version"
    assert "`split` fractions would be ignored" in by_name["both.yaml"][0]["message"]
    shape = by_name["family_shape.yaml"][0]
    assert shape["code"] == "PT211" and "image_size" in shape["hint"]


@pytest.mark.slow
def test_a_tfds_spec_trains(tmp_path, mock_mnist):
    path = _write(tmp_path, _mnist_spec())
    result = invoke("train", path, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["tasks"]["digit"]["train_examples"] == 200
    assert report["metrics"]["test"]["digit/accuracy"] > 0.5  # chance is 0.1


def _omniglot_examples(split: str):
    """30 characters x 6 drawings; each character is a distinct bright pixel block."""
    rng = np.random.default_rng(0)
    for character in range(30):
        for drawing in range(6):
            image = np.full((105, 105, 3), 255, np.uint8)
            row, col = divmod(character, 6)
            image[row * 17: row * 17 + 17, col * 17: col * 17 + 17] = rng.integers(0, 60)
            yield {"image": image, "alphabet": character // 10, "alphabet_char_id": character % 10,
                   "label": character}


@pytest.mark.slow
def test_tfds_omniglot_feeds_a_classes_family(tmp_path):
    clear_cache()
    path = _write(tmp_path, FAMILY)
    with tfds.testing.mock_data(as_dataset_fn=_fake_as_dataset(_omniglot_examples)):
        assert invoke("check", path).exit_code == 0
        result = invoke("train", path, "--out", tmp_path / "run", "--quiet")
    clear_cache()
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    # 30 characters with examples (of the builder's 1,623 labels): 18 / 6 / 6 by the class split
    assert {s: v["base_classes"] for s, v in report["sampler"].items()} == {"train": 18, "validation": 6, "test": 6}
    assert report["steps"] == 20
    # the characters are distinct blocks: meta-test episodes of unseen characters are easy (chance 1/3)
    assert report["meta_test"]["curve"][0]["accuracy"]["mean"] > 0.6


def test_without_tensorflow_datasets_the_message_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # `import tensorflow_datasets` fails
    clear_cache()
    with pytest.raises(DataError, match="needs tensorflow-datasets, which is not installed") as info:
        load(tmp_path, {"source": "tfds", "name": "mnist"})
    assert "polytask[tfds]" in info.value.hint


def _prepare_info(folder, name="mnist"):
    """A data_dir holding a builder's dataset_info.json and features.json (no data), as TFDS writes them."""
    builder = tfds.builder(name, data_dir=str(folder / "tfds_data"))
    target = folder / "tfds_data" / name / str(builder.info.version)
    target.mkdir(parents=True)
    builder.info.write_to_directory(str(target))


def test_check_reads_the_features_of_prepared_data_and_they_match_the_table(tmp_path, mock_mnist):
    from data_support import loaded_spec
    from polytask.spec.data_checks import probe

    _prepare_info(tmp_path)
    dataset = {"source": "tfds", "name": "mnist", "data_dir": "tfds_data", "splits": {"train": "train"},
               "image_size": [14, 14], "limit": 20}
    spec_dataset = loaded_spec(tmp_path, {"d": dataset}).spec.datasets["d"]
    facts = probe("d", spec_dataset, lambda p: tmp_path / p, lambda *args, **kwargs: None)
    assert facts.columns["label"].num_classes == 10 and facts.columns["image"].shape == (14, 14, 1)
    table = load(tmp_path, dataset)
    assert set(facts.columns) == set(table.info)
    for name, column in facts.columns.items():
        assert (column.shape, column.dtype, column.categorical) == (table.info[name].shape, table.info[name].dtype,
                                                                      table.info[name].categorical), name
    # and so `polytask check` finds a misspelled target, with did-you-mean, without TensorFlow
    spec = _mnist_spec(data_dir="tfds_data")
    spec["tasks"]["digit"]["target"] = "lable"
    path = _write(tmp_path, spec)
    code = ("import sys; from polytask.cli import main\n"
            "try:\n    main(['check', sys.argv[1]])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('TF', 'tensorflow' in sys.modules or 'tensorflow_datasets' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert "TF False" in out.stdout and "EXIT 1" in out.stdout, out.stdout + out.stderr
    assert "has no feature 'lable' (did you mean 'label'?)" in out.stdout
