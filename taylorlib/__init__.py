"""taylorlib: Taylor expansions of wide neural networks beyond the NTK.

Example:
    >>> import taylorlib as tl
    >>> tl.__version__
    '0.2.0'
"""

from . import activations as activations
from . import data as data
from . import higher_order as higher_order
from . import kernel_regression as kernel_regression
from . import kernels as kernels
from . import landscape as landscape
from . import nets as nets
from . import ntk as ntk
from . import plotting as plotting
from . import quadratic as quadratic
from . import randomize as randomize
from . import regularizers as regularizers
from . import relaxation as relaxation
from . import saddle as saddle
from . import scaling as scaling
from . import sweep as sweep
from . import targets as targets
from . import taylor as taylor
from . import train as train
from . import typing as typing

__version__ = "0.2.0"

#: The public submodules; every name in their ``__all__`` is public API.
__all__ = [
    "activations",
    "data",
    "higher_order",
    "kernel_regression",
    "kernels",
    "landscape",
    "nets",
    "ntk",
    "plotting",
    "quadratic",
    "randomize",
    "regularizers",
    "relaxation",
    "saddle",
    "scaling",
    "sweep",
    "targets",
    "taylor",
    "train",
    "typing",
    "__version__",
]
