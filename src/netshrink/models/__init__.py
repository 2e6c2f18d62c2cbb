"""Model zoo and registry: `netshrink.models.create("lenet300")`, `netshrink.models.names()`."""

from netshrink.models import zoo  # noqa: F401  (registers the zoo)
from netshrink.models.registry import create, names, register, reinitialize

__all__ = ["create", "names", "register", "reinitialize"]
