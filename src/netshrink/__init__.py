"""netshrink: make PyTorch networks small and fast, and prove what it bought.

The public verbs live here (prune_, quantize_, distill, share_, save, load); each family has
its own subpackage (data, models, train, measure, prune, quant, distill, pack, bench).
"""

__version__ = "0.1.0"

# distill is a callable module: netshrink.distill(student, teacher, data, config, train_config)
from netshrink import data, distill, measure, models, pack, prune, train
from netshrink.errors import NetshrinkError
from netshrink.pack import share_
from netshrink.prune import prune_
from netshrink.quant import quantize_
from netshrink.serialize import load, save

__all__ = ["NetshrinkError", "__version__", "data", "distill", "load", "measure", "models",
           "pack", "prune", "prune_", "quantize_", "save", "share_", "train"]
