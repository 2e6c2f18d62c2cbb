"""netshrink: make PyTorch networks small and fast, and prove what it bought.

The public verbs live here; each family has its own subpackage (data, models, train, measure).
"""

__version__ = "0.1.0"

# distill is a callable module: netshrink.distill(student, teacher, data, config, train_config)
from netshrink import data, distill, measure, models, train
from netshrink.errors import NetshrinkError
from netshrink.serialize import load, save

__all__ = ["NetshrinkError", "__version__", "data", "distill", "load", "measure", "models", "save",
           "train"]
