"""codax runtime: what generated code calls, as `rt.<name>`.

Never imports the transformer. Importing it fills the primitive table."""
from .adjoint import *  # noqa: F401,F403
from .adjoint import (install_jvp_hook, install_sweeps_hook, install_tangent_hook,
                      install_sweeps_for_hook, sweeps_for,  # noqa: F401
                      install_vjp_hook, tangent_function,  # noqa: F401
                      jvp_call, pullback, pullback_function, pullback_state, sweeps,
                      vjp_call)
from .rules import *  # noqa: F401,F403
from .updates import *  # noqa: F401,F403
from .table import TABLE  # noqa: F401
from .batching import *  # noqa: F401,F403
from .batching import install_vmap_hook  # noqa: F401
from .batched_forms import *  # noqa: F401,F403
from .closures import (Closure, call_closure, captured, captured_cotangent,  # noqa: F401
                       closure, closure_function, transformation)
from . import primitives  # noqa: F401
from . import definitions  # noqa: F401  (rt.definitions.<name>: NumPy in NumPy)
from .primitives.nodes import (attribute_cotangent, attribute_tangent,  # noqa: F401
                               built_cotangents, built_tangent, construct, node_attribute)
from .primitives.searching import unique_parts, unique_parts_per_example  # noqa: F401
from .primitives.fft import fft_axes, irfft_mask, real_like, resized, resizes  # noqa: F401
from .backend import array_module, backend_name, is_array  # noqa: F401
from . import kernels  # noqa: F401  (rt.kernels.<back end>, imported on first use)
