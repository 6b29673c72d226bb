# codax: grad(calls_helper) f64[:], f64[:] #N, generated from calls_helper (golden_functions.py:56)
def grad_calls_helper(x, w):
    # line 57: h = softplus(x * w)
    _t0 = x * w
    h, _pb0 = rt.vjp_call(softplus, _t0)
    # line 58: return np.sum(h * x)
    _t1 = h * x
    # adjoint of line 58: return np.sum(h * x)
    bh = rt.unbroadcast(1.0 * x, h, _t1)
    bx = rt.unbroadcast(1.0 * h, x, _t1)
    # adjoint of line 57: h = softplus(x * w)
    _b0 = rt.pullback(_pb0, bh)
    b_t0 = rt.item(_b0, 0)
    bx = bx + rt.unbroadcast(b_t0 * w, x, _t0)
    return rt.finalize(bx, x)
