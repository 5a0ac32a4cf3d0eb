"""Where :class:`~skprune.MaskStore` used to live; it now lives beside the protocol (``pruners._masks``).

Kept so that estimators pickled by earlier versions (which name
``skprune._training._masks.MaskStore``) still unpickle. New code imports
from :mod:`skprune.pruners._masks`.
"""

from ..pruners._masks import ELEMENTWISE_OPTIMIZERS, MaskStore, is_elementwise

__all__ = ["ELEMENTWISE_OPTIMIZERS", "MaskStore", "is_elementwise"]
