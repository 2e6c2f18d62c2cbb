"""Model zoo and registry: `netshrink.models.create("lenet300")`, `netshrink.models.names()`.

The built-in models are listed here, in one table, and registered when this package is
imported (before anything can call `create`); a user's own model joins with `@register(name)`.
"""

from netshrink.models import minilm, zoo
from netshrink.models.registry import create, defaults, names, register, reinitialize

BUILTIN = {
    "lenet300": zoo.lenet300,
    "mlp": zoo.mlp,
    "lenet5": zoo.lenet5,
    "lenet5-caffe": zoo.lenet5_caffe,
    "conv2": zoo.conv2,
    "conv4": zoo.conv4,
    "conv6": zoo.conv6,
    "vgg": zoo.vgg,
    "resnet": zoo.resnet,
}
if minilm.available():  # all-MiniLM-L6-v2 needs the `text` extra (transformers)
    BUILTIN["minilm"] = minilm.minilm

for _name, _builder in BUILTIN.items():
    register(_name)(_builder)

__all__ = ["BUILTIN", "create", "defaults", "names", "register", "reinitialize"]
