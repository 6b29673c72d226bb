# codax: grad(loop_accumulate) f64[:] #N, generated from loop_accumulate (golden_functions.py:30)
def grad_loop_accumulate(x):
    # line 31: acc = 0.0
    _t0 = None
    _t1 = None
    _t3 = None
    _t4 = None
    acc = None
    _stack = []
    _stack.append(acc)
    acc = 0.0
    # line 32: for i in range(4):
    for i in range(4):
        # line 33: acc = acc + np.sum(np.cos(x * (i + 1)))
        _stack.append(_t0)
        _t0 = i + 1
        _stack.append(_t1)
        _t1 = x * _t0
        _t2 = xp.cos(_t1)
        _stack.append(_t3)
        _t3 = xp.sum(_t2)
        _stack.append(_t4)
        _t4 = acc + _t3
        _stack.append(acc)
        acc = _t4
    bacc = rt.seed(acc)
    # adjoint of line 32: for i in range(4):
    bx = 0.0
    for i in reversed(range(4)):
        # adjoint of line 33: acc = acc + np.sum(np.cos(x * (i + 1)))
        b_t4 = bacc
        bacc = 0.0
        acc = _stack.pop()
        bacc = rt.unbroadcast(b_t4, acc, _t4)
        b_t3 = rt.unbroadcast(b_t4, _t3, _t4)
        _t4 = _stack.pop()
        b_t2 = b_t3
        _t3 = _stack.pop()
        b_t1 = -b_t2 * xp.sin(_t1)
        bx = bx + rt.unbroadcast(b_t1 * _t0, x, _t1)
        _t1 = _stack.pop()
        _t0 = _stack.pop()
    # adjoint of line 31: acc = 0.0
    bacc = 0.0
    acc = _stack.pop()
    return rt.finalize(bx, x)
