"""netshrink: make PyTorch networks small and fast, and prove what it bought.

The public verbs live here; each family has its own subpackage (data, models, train, measure).
"""

__version__ = "0.1.0"

from netshrink import data, measure, models, train
from netshrink.errors import NetshrinkError
from netshrink.prune import prune_
from netshrink.serialize import load, save

__all__ = ["NetshrinkError", "__version__", "data", "load", "measure", "models", "prune_", "save",
           "train"]
