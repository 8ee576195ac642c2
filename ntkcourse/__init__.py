"""ntkcourse: infinite-width kernels (NNGP, NTK) of neural networks on current JAX."""
from . import dual, stax

__version__ = "0.1.0"
__all__ = ["dual", "stax", "__version__"]
