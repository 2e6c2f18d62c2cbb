"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a teacher or an ensemble teaches a student.

    result = netshrink.distill(student, teacher, splits, DistillConfig(temperature=4))

The student trains in the shared loop (`netshrink.train.fit`) through a callback that adds the
soft-target loss (or logit matching, or FitNets hints) to the hard-label loss. Teachers may be
one model, a list of models (an ensemble) and may have their outputs cached on disk. A teacher
of embeddings (or any regression output) is matched by cosine or MSE instead, with MiniLM's
attention relations (netshrink.distill.relations) beside.
"""

import sys
import types

from netshrink.distill.api import DistillResult, distill
from netshrink.distill.augment import Jitter, shift_images
from netshrink.distill.bias import best_class_bias, shift_class_bias, sweep_class_bias
from netshrink.distill.cache import TeacherCache, data_digest, teacher_digest
from netshrink.distill.config import DistillConfig
from netshrink.distill.relations import Relation
from netshrink.distill.teachers import Ensemble
from netshrink.distill.transfer import transfer_set

__all__ = ["DistillConfig", "DistillResult", "Ensemble", "Jitter", "Relation", "TeacherCache",
           "best_class_bias", "data_digest",
           "distill", "shift_class_bias", "shift_images", "sweep_class_bias", "teacher_digest",
           "transfer_set"]


class _CallableModule(types.ModuleType):
    """Lets `netshrink.distill(...)` call the function while `netshrink.distill.X` stays the
    subpackage: binding the function to the name would hide the subpackage's attributes."""

    def __call__(self, *args, **kwargs):
        return distill(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
