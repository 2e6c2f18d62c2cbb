"""Deep Compression's last two stages: weight sharing and the compressed file.

    netshrink.prune_(model, "magnitude", sparsity=0.92)    # prune (and retrain)
    netshrink.pack.share_(model, ShareConfig(bits=5))      # k-means per layer
    fit(model, splits, TrainConfig(epochs=1))              # fine-tune the centroids
    netshrink.save(model, "model.nsz")                     # positions + indices, entropy coded
    netshrink.load("model.nsz")                            # the same model, runnable

Details of the file format: docs/pack.md.
"""

from netshrink.pack import baselines, coding, nsz, positions
from netshrink.pack.baselines import compressed_sizes, int8_baselines
from netshrink.pack.share import (
    ShareConfig,
    SharedLayer,
    SharedWeight,
    ShareReport,
    kmeans_1d,
    share_,
    shared,
)

__all__ = ["ShareConfig", "ShareReport", "SharedLayer", "SharedWeight", "baselines", "coding",
           "compressed_sizes", "int8_baselines", "kmeans_1d", "nsz", "positions", "share_",
           "shared"]
