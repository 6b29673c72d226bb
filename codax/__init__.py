"""codax: JAX's composable transformations for plain NumPy code, by source
transformation. See README.md and docs/."""
from transformer.errors import SourceError  # noqa: F401

from . import calls, tree_util  # noqa: F401
from .custom import checkpoint, custom_jvp, custom_vjp, remat  # noqa: F401
from runtime import stop_gradient  # noqa: F401

from .api import (grad, hessian, jacfwd, jacrev, jvp, linearize, source,  # noqa: F401
                  value_and_grad, vjp)

__version__ = '0.1.0'
__all__ = ['grad', 'value_and_grad', 'vjp', 'jvp', 'linearize', 'jacfwd', 'jacrev', 'hessian',
           'stop_gradient', 'custom_jvp', 'custom_vjp', 'checkpoint', 'remat',
           'source', 'SourceError', 'tree_util']
