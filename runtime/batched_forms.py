"""Calls of functions that bring their own batched form (codax.random's samplers)."""

__all__ = ['batched_form']


def batched_form(fn, args, kwargs):
    """`fn.__codax_batched__(*args, **kwargs)`: vmap's rule for a call of `fn`
    whose first argument (a key) has a leading batch axis and whose other
    arguments are shared by all examples. The batched form returns what `fn`
    returns for each example, stacked on a new leading axis."""
    return fn.__codax_batched__(*args, **kwargs)
