"""`top5_accuracy`: fraction of examples whose label is among the 5 most probable classes."""

from polytask.compiler.metrics import Metric
from polytask.spec.registry import METRICS


@METRICS.register
class Top5Accuracy(Metric):
    """Fraction of examples whose label is among the 5 most probable classes."""

    name = "top5_accuracy"

    def problem(self, loss, loss_params, column):
        if loss.output_kind(loss_params, column) == "sigmoid":
            return "top5_accuracy needs more than 5 classes; this is binary", None
        if column is not None and column.num_classes is not None and column.num_classes <= 5:
            return f"top5_accuracy needs more than 5 classes; the target has {column.num_classes}", "use accuracy"
        return None

    def __call__(self, labels, predictions):
        import numpy as np

        probabilities = self.need(predictions, "probabilities", self.name)
        top = np.argsort(-probabilities, axis=1)[:, :5]
        return float(np.mean((top == labels[:, :1].astype(np.int64)).any(axis=1)))
