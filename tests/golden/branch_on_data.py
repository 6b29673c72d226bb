# codax: grad(branch_on_data) f64[:], f64[:] #N, generated from branch_on_data (golden_functions.py:19)
def grad_branch_on_data(x, w):
    # line 20: s = np.sum(x * w)
    out = None
    _stack = []
    _t0 = x * w
    s = xp.sum(_t0)
    # line 21: if s > 0.0:
    _t1 = s > 0.0
    if _t1:
        # line 22: out = np.sum(np.sin(x) * w)
        _t2 = xp.sin(x)
        _t3 = _t2 * w
        _stack.append(out)
        out = xp.sum(_t3)
    else:
        # line 24: out = np.sum(x ** 2) - s
        _t4 = x ** 2
        _t5 = xp.sum(_t4)
        _stack.append(out)
        out = _t5 - s
    bout = rt.seed(out)
    # adjoint of line 21: if s > 0.0:
    bx = 0.0
    b_t2 = 0.0
    b_t3 = 0.0
    b_t4 = 0.0
    b_t5 = 0.0
    bs = 0.0
    if _t1:
        # adjoint of line 22: out = np.sum(np.sin(x) * w)
        b_t3 = b_t3 + bout
        bout = 0.0
        out = _stack.pop()
        b_t2 = b_t2 + rt.unbroadcast(b_t3 * w, _t2, _t3)
        bx = bx + b_t2 * xp.cos(x)
    else:
        # adjoint of line 24: out = np.sum(x ** 2) - s
        b_t5 = b_t5 + rt.unbroadcast(bout, _t5, out)
        bs = bs + rt.unbroadcast(-bout, s, out)
        bout = 0.0
        out = _stack.pop()
        b_t4 = b_t4 + b_t5
        bx = bx + b_t4 * 2 * x
    # adjoint of line 20: s = np.sum(x * w)
    b_t0 = bs
    bx = bx + rt.unbroadcast(b_t0 * w, x, _t0)
    return rt.finalize(bx, x)
