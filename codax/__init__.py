"""codax: JAX's composable transformations for plain NumPy code, by source
transformation. See README.md and docs/."""
from transformer.errors import SourceError  # noqa: F401

from . import calls, tree, tree_util  # noqa: F401
from .custom import checkpoint, custom_jvp, custom_vjp, remat  # noqa: F401
from runtime import stop_gradient  # noqa: F401

from .api import float0, grad, jvp, linearize, source, value_and_grad, vjp  # noqa: F401
from .jacobians import hessian, jacfwd, jacrev  # noqa: F401
from .vmap import vmap  # noqa: F401
from .jit import ShapeDtypeStruct, jit  # noqa: F401
from . import lax, numpy, random  # noqa: F401
from .devices import device_get, device_put, devices  # noqa: F401

# Applied to a lambda or nested def inside transformed code, these give a
# closure of the transformed function (runtime/closures.py, transformation).
for _transform in (grad, value_and_grad, vmap, jit, jacfwd, jacrev, hessian, checkpoint, remat):
    _transform.__codax_transformation__ = True

__version__ = '0.1.0'
__all__ = ['grad', 'value_and_grad', 'vmap', 'jit', 'ShapeDtypeStruct', 'vjp', 'jvp', 'linearize', 'jacfwd', 'jacrev', 'hessian',
           'stop_gradient', 'custom_jvp', 'custom_vjp', 'checkpoint', 'remat',
           'source', 'SourceError', 'tree', 'tree_util', 'lax', 'random', 'numpy',
           'devices', 'device_put', 'device_get', 'float0']
