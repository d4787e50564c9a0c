"""`keras_application`: a `keras.applications` backbone (ResNet50, MobileNetV3Small, ...) as a layer.

    trunk:
      - keras_application: {name: MobileNetV3Small, weights: null, trainable: true, pooling: avg}

The backbone is built without its classification top (`include_top=False`) for the planned
input shape, so any image size and channel count the application accepts works. `weights`:
`null` (random initialisation, the default), `imagenet` (Keras downloads the ImageNet
weights into ~/.keras/models the first time, as `keras.applications` does; only when the
spec says so; they need 3 channels), or the path of a weights file saved from the same
backbone with `include_top=False` (`model.save_weights("backbone.weights.h5")`), relative to
the spec's folder. `trainable: false` freezes the backbone: its weights do not train and its
batch normalisation runs in inference mode. `pooling`: `avg` or `max` give a vector per
example, `null` the last feature map. `config` passes further arguments of the application
(`alpha`, `include_preprocessing`, ...), checked against spec/keras_applications.json.

Inputs arrive standardised by polytask (per-feature mean and standard deviation of the
training split), not with the application's own `preprocess_input`.

`polytask check` validates the name (did-you-mean) and `config` keys without TensorFlow;
`polytask plan` builds the backbone on a symbolic input (never loading weights) for its
output shape and parameter count. Meta-learning cannot use it (a Keras model owns its weights).
"""
from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

from pydantic import Field, field_validator, model_validator

from polytask.compiler.layers import Layer, LayerShapeError, Weight, require_keras
from polytask.errors import PolytaskError
from polytask.spec.catalogs import names, unknown
from polytask.spec.registry import LAYERS
from polytask.spec.suggest import did_you_mean, one_of
from polytask.spec.types import StrictModel

# Set by the compiler while it builds a spec's network: relative weight paths resolve against it.
SPEC_FOLDER: ContextVar[Optional[Path]] = ContextVar("polytask_spec_folder", default=None)
SET_BY_POLYTASK = {"include_top", "weights", "input_shape", "input_tensor", "pooling", "classes",
                   "classifier_activation", "name"}


class KerasApplicationParams(StrictModel):
    """A `keras.applications` backbone without its top; weights none, ImageNet's, or a file."""

    name: str = Field(description="The `keras.applications` function (`ResNet50`, `MobileNetV3Small`, `EfficientNetB0`, ...).")
    weights: Optional[str] = Field(None, min_length=1, description="`null` (random), `imagenet` (Keras downloads them), "
                                   "or a weights file of the same backbone without top, relative to the spec's folder.")
    trainable: bool = Field(True, description="Train the backbone (false: frozen, batch norm in inference mode).")
    pooling: Optional[Literal["avg", "max"]] = Field("avg", description="Global pooling of the last feature map; "
                                                     "null keeps the map.")
    config: dict[str, Any] = Field({}, description="More arguments of the application function (`alpha`, ...).")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in names("keras_applications"):
            raise ValueError(unknown("keras_applications", "Keras application", value))
        return value

    @model_validator(mode="after")
    def _arguments(self) -> "KerasApplicationParams":
        facts = names("keras_applications").get(self.name)
        if facts is None:
            return self
        accepted = sorted(set(facts["arguments"]) - SET_BY_POLYTASK)
        for key in self.config:
            if key in SET_BY_POLYTASK:
                raise ValueError(f"`{key}` is set by polytask (no top; weights, pooling and input shape are fields)")
            if key not in accepted:
                raise ValueError(f"{self.name} takes no argument {key!r}{did_you_mean(key, accepted)}; "
                                 f"it takes {one_of(accepted, 20)}")
        return self


def _weights_file(params) -> Optional[str]:
    """The weights file `weights` names, as written (None for `null` and `imagenet`)."""
    return None if params.weights in (None, "imagenet") else params.weights


def _weights_path(value: Optional[str]) -> Optional[str]:
    """A weights file's absolute path (None for no file); a missing file is a LayerShapeError."""
    if value is None:
        return None
    path = Path(value)
    if not path.is_absolute():
        path = (SPEC_FOLDER.get() or Path.cwd()) / path
    if not path.is_file():
        raise LayerShapeError(f"weights file not found: {path}", "relative paths resolve against the spec's folder; "
                              "save one with model.save_weights('backbone.weights.h5')")
    return str(path)


def backbone(params, name: Optional[str] = None, load_weights: bool = True):
    """The Keras layer: the application built in `build` for the input shape it receives."""
    import keras

    weights_file = _weights_path(_weights_file(params)) if load_weights else None

    class Backbone(keras.layers.Layer):
        """`keras.applications.<name>` without top, built for its input; frozen when not trainable."""

        def build(self, input_shape):
            function = getattr(keras.applications, params.name)
            try:
                self.model = function(include_top=False, input_shape=tuple(input_shape[1:]), pooling=params.pooling,
                                      weights="imagenet" if params.weights == "imagenet" and load_weights else None,
                                      **params.config)
            except (ValueError, TypeError) as exc:
                raise PolytaskError(f"Keras {params.name}: {' '.join(str(exc).split())[:400]}",
                                    hint="check the image size and channels the backbone accepts, and `weights` "
                                    "(a file saved from the same backbone with include_top=False)") from None
            self.model.trainable = params.trainable

        def load_initial_weights(self):
            """Read the weights file (the compiler calls this once the network is built: a file
            read while Keras builds a parent layer symbolically would be dropped)."""
            if weights_file:
                try:
                    self.model.load_weights(weights_file)
                except (ValueError, TypeError, OSError) as exc:
                    raise PolytaskError(f"cannot load {weights_file} into {params.name}: "
                                        f"{' '.join(str(exc).split())[:400]}",
                                        hint="save the file from the same backbone and input shape with "
                                        "include_top=False (model.save_weights)") from None

        def call(self, x, training=None):
            return self.model(x, training=training if params.trainable else False)

    return Backbone(name=name or f"backbone_{params.name.lower()}")


def _key(params) -> str:
    return params.model_dump_json()


@lru_cache(maxsize=32)
def _built(key: str, input_shape: tuple):
    """(output shape, weights) of the backbone on a symbolic input; no weights are loaded."""
    keras = require_keras("`keras_application` backbones")

    params = KerasApplicationParams.model_validate_json(key)
    layer = backbone(params, load_weights=False)
    try:
        out = layer(keras.KerasTensor((None, *input_shape)))
    except PolytaskError as exc:
        raise LayerShapeError(exc.message, exc.hint) from None
    except Exception as exc:
        raise LayerShapeError(f"Keras {params.name}: {' '.join(str(exc).split())[:400]}",
                              "keras.applications backbones take (height, width, channels) images") from None
    weights = tuple(Weight(w.path, tuple(int(d) for d in w.shape), trainable=bool(w.trainable)) for w in layer.weights)
    return tuple(int(d) for d in out.shape[1:]), weights


@LAYERS.register
class KerasApplication(Layer):
    """A `keras.applications` backbone without its top (weights null, imagenet or a file; frozen or trained)."""

    name = "keras_application"
    Params = KerasApplicationParams
    static_shapes = False
    meta_unsupported = ("the meta-learning inner loop runs layers as functions of per-task weights, "
                        "and a Keras backbone owns its weights")
    plan_note: ClassVar[str] = ("shapes and parameter counts of `keras_application` backbones come from Keras itself "
                                "(TensorFlow was imported to plan them; no weights were loaded)")

    def label(self, params) -> str:
        return f"keras.{params.name}"

    def output_shape(self, params, input_shape, form="keras"):
        if len(input_shape) != 3:
            raise LayerShapeError("keras_application backbones take (height, width, channels) images",
                                  "use an image dataset and put the backbone first in the trunk")
        return _built(_key(params), tuple(input_shape))[0]

    def weights(self, params, input_shape):
        return list(_built(_key(params), tuple(input_shape))[1])

    def files(self, params):
        return {"weights": _weights_file(params)} if _weights_file(params) else {}

    def keras(self, params, name):
        try:
            return backbone(params, name)
        except LayerShapeError as exc:  # a weights file that is not there
            raise PolytaskError(exc.message, hint=exc.hint) from None
