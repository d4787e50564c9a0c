"""polytask-focal: the focal loss and a residual dense layer, as a polytask plugin.

Importing this package registers both descriptors; polytask imports it through the
`polytask.plugins` entry point. Nothing here imports TensorFlow until a model is built.
"""
from polytask_focal import focal_loss, residual_dense  # noqa: F401  (registration on import)

__all__ = ["focal_loss", "residual_dense"]
