"""HParams for TensorBoard (runtime/summaries.py): every training run is a session with its
seed, role and the spec's key training fields, and a `--baseline` run's tasks are sessions of
the same experiment, read back with TensorBoard's own event reader."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_support import invoke

SPECS = Path(__file__).resolve().parent / "specs"


def sessions(logdir: Path) -> tuple[dict, dict]:
    """({run: hparams} of the session start infos, {run: experiment}) as TensorBoard reads them."""
    from tensorboard.backend.event_processing import event_multiplexer
    from tensorboard.plugins.hparams import metadata

    multiplexer = event_multiplexer.EventMultiplexer().AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    found, experiments = {}, {}
    for run, tags in multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME).items():
        if metadata.SESSION_START_INFO_TAG in tags:
            info = metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG])
            found[run] = {k: v.ListFields()[0][1] for k, v in info.hparams.items()}
        if metadata.EXPERIMENT_TAG in tags:
            experiments[run] = metadata.parse_experiment_plugin_data(tags[metadata.EXPERIMENT_TAG])
    return found, experiments


@pytest.fixture
def spec(tmp_path):
    shutil.copytree(SPECS / "data", tmp_path / "data")
    (tmp_path / "specs").mkdir()
    return shutil.copy(SPECS / "valid" / "csv_hard.yaml", tmp_path / "specs" / "csv_hard.yaml")


def test_training_hparams_are_the_specs_key_fields(spec):
    from polytask.runtime.summaries import training_hparams
    from polytask.spec.loader import load_spec

    loaded = load_spec(spec)
    values = training_hparams(loaded.spec, role="multi_task")
    training = loaded.spec.training
    assert values["seed"] == loaded.spec.seed and values["role"] == "multi_task"
    assert values["steps"] == training.steps and values["batch_size"] == training.batch_size
    assert values["sharing"] == "hard" and values["tasks"] == ",".join(loaded.spec.tasks)
    optimizer = training.model_dump(by_alias=True, exclude_none=True)["optimizer"]
    (name, params), = optimizer.items()
    assert values["optimizer"] == name and values["learning_rate"] == params["learning_rate"]
    alone = training_hparams(loaded.spec, role="independent", tasks=["label"])
    assert (alone["tasks"], alone["task_count"]) == ("label", 1)
    assert all(isinstance(v, (bool, int, float, str)) for v in values.values())


def test_a_session_and_its_config_are_read_back(tmp_path):
    from polytask.runtime.summaries import write_hparams, write_hparams_config

    session = tmp_path / "run" / "tensorboard"
    assert write_hparams(str(session), {"seed": 3, "role": "multi_task", "learning_rate": 0.01}, trial_id="t")
    assert write_hparams_config(str(session), ["seed", "role", "learning_rate"],
                                {"validation": ["a/accuracy"], "train": ["loss"]})
    found, experiments = sessions(tmp_path)
    assert found == {"run/tensorboard": {"seed": 3.0, "role": "multi_task", "learning_rate": 0.01}}
    experiment = experiments["run/tensorboard"]
    assert [h.name for h in experiment.hparam_infos] == ["seed", "role", "learning_rate"]
    assert {(m.name.group, m.name.tag) for m in experiment.metric_infos} == {("validation", "a/accuracy"),
                                                                               ("train", "loss")}


@pytest.mark.slow
def test_a_baseline_run_is_one_experiment_of_sessions(spec, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", spec, "--out", run, "--steps", "6", "--seed", "4", "--baseline", "independent", "--quiet")
    assert result.exit_code == 0, result.output
    found, experiments = sessions(run)
    assert set(found) == {"tensorboard", "baseline/label/tensorboard", "baseline/score/tensorboard"}
    assert found["tensorboard"]["role"] == "multi_task" and found["tensorboard"]["tasks"] == "label,score"
    for task in ("label", "score"):
        alone = found[f"baseline/{task}/tensorboard"]
        assert (alone["role"], alone["tasks"], alone["seed"]) == ("independent", task, 4.0)
        assert alone["steps"] == 6.0
    assert list(experiments) == ["tensorboard"], "one experiment config, from the top-level run"
    metrics = {(m.name.group, m.name.tag) for m in experiments["tensorboard"].metric_infos}
    assert ("validation", "test/label/accuracy") in metrics and ("train", "loss") in metrics
    # The metric groups are the session's subfolders, where the scalars are.
    assert (run / "tensorboard" / "validation").is_dir() and (run / "tensorboard" / "train").is_dir()
