"""`auc`: area under the ROC curve (binary; one-vs-rest macro average for K classes)."""
import numpy as np

from polytask.compiler.metrics import METRICS, Metric


@METRICS.register("auc")
class Auc(Metric):
    def __call__(self, labels, predictions):
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
