"""`auc`: area under the ROC curve (binary; one-vs-rest macro average for K classes)."""

from polytask.compiler.metrics import Metric
from polytask.spec.registry import METRICS


@METRICS.register
class Auc(Metric):
    """Area under the ROC curve (binary classification, or two classes)."""

    name = "auc"

    def problem(self, loss, loss_params, column):
        if column is not None and column.distinct == 1:
            return ("auc needs both classes, and the target holds one class: it would be undefined (nan)",
                    "a target with one class cannot be classified; check the target column")
        if loss.output_kind(loss_params, column) == "softmax" and not (column and column.num_classes == 2):
            if column is not None and column.num_classes is not None and column.num_classes < 2:
                return ("auc needs two classes, and the target holds one",
                        "a target with one class cannot be classified; check the target column")
            return ("auc is for binary classification (binary_cross_entropy, or two classes)",
                    "use accuracy when the target has more than two classes")
        return None

    def __call__(self, labels, predictions):
        import numpy as np

        from sklearn.metrics import roc_auc_score

        y = labels[:, 0].astype(np.int64)
        if len(np.unique(y)) < 2:
            return float("nan")  # undefined with one class present
        if "probability" in predictions:
            return float(roc_auc_score(y, np.asarray(predictions["probability"])))
        probabilities = self.need(predictions, "probabilities", self.name)
        present = np.unique(y)
        if len(present) == 2 and probabilities.shape[1] == 2:
            return float(roc_auc_score(y, probabilities[:, 1]))
        scores = [roc_auc_score(y == c, probabilities[:, c]) for c in present]
        return float(np.mean(scores))
