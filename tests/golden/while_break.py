# codax: grad(while_break) f64[:] #N, generated from while_break (golden_functions.py:39)
def grad_while_break(x):
    # line 40: y = x
    _t1 = None
    y = None
    _stack = []
    _stack.append(y)
    y = x
    # line 41: k = 0
    k = 0
    # line 42: while k < 10:
    _break0 = False
    _t0 = not _break0
    _c0 = _t0
    if _c0:
        _t0 = k < 10
    _n0 = 0
    while _t0:
        # line 43: y = np.tanh(y) * 1.5
        _stack.append(_t1)
        _t1 = xp.tanh(y)
        _stack.append(y)
        y = _t1 * 1.5
        # line 44: if np.sum(y) > 2.0:
        _t2 = xp.sum(y)
        _t3 = _t2 > 2.0
        if _t3:
            # line 45: break
            _break0 = True
        # line 46: k = k + 1
        _t4 = not _break0
        if _t4:
            _t5 = k + 1
            k = _t5
        # line 42: while k < 10:
        _t0 = not _break0
        _c0 = _t0
        if _c0:
            _t0 = k < 10
        _n0 = _n0 + 1
    _stack.append(_n0)
    # adjoint of line 47: return np.sum(y ** 2)
    by = 2.0 * y
    # adjoint of line 42: while k < 10:
    _n0 = _stack.pop()
    for _it0 in range(_n0):
        # adjoint of line 43: y = np.tanh(y) * 1.5
        b_t1 = by * 1.5
        by = 0.0
        y = _stack.pop()
        by = b_t1 * (1 - _t1 * _t1)
        _t1 = _stack.pop()
    # adjoint of line 40: y = x
    bx = by
    by = 0.0
    y = _stack.pop()
    return rt.finalize(bx, x)
