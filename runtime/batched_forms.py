"""Calls of functions that bring their own batched form (codax.random's samplers).

A function `fn` with a batched form carries it as `fn.__codax_batched__`: the
same arguments, with the first one (a key) carrying any number of leading
batch axes, returning what `fn` returns for each example with those axes in
front. Because every level of batching is just one more leading axis, the
batched form serves vmap of vmapped code as it is.

The form may also state the rank of its result, `form.rank(*args, **kwargs)`,
asked at compile time (`batched_form_rank`) with each argument described as
the compiler knows it: the batch pass then knows the rank of the draws, so the
code that uses them stays vectorized.
"""

__all__ = ['batched_form', 'Abstract', 'batched_form_rank']


def batched_form(fn, args, kwargs):
    """`fn.__codax_batched__(*args, **kwargs)`: vmap's rule for a call of `fn`
    whose first argument (a key) has leading batch axes and whose other
    arguments are shared by all examples. The batched form returns what `fn`
    returns for each example, with those axes in front."""
    return fn.__codax_batched__(*args, **kwargs)


class Abstract:
    """An argument known at compile time only by its number of dimensions
    (`ndim`; None when not even that is known): 0 for a number, 1 for a vector."""
    __slots__ = ('ndim',)

    def __init__(self, ndim=None):
        self.ndim = ndim

    def __eq__(self, other):
        return isinstance(other, Abstract) and other.ndim == self.ndim

    __hash__ = None

    def __repr__(self):
        return f'Abstract(ndim={self.ndim})'


def batched_form_rank(fn, args, kwargs):
    """The rank of `fn.__codax_batched__(*args, **kwargs)`, by the form's own
    `rank`, for arguments described as the compiler knows them: None (the
    constant None), tuples and dicts of descriptions, or Abstract. None where
    the form states no rank or the description does not tell it."""
    rank = getattr(getattr(fn, '__codax_batched__', None), 'rank', None)
    if rank is None:
        return None
    try:
        out = rank(*args, **kwargs)
    except Exception:                # a call the form would refuse: it says why at run time
        return None
    return out if isinstance(out, int) and out >= 0 else None
