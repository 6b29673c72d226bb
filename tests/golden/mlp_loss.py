# codax: grad(mlp_loss) dict, f64[:,:], f64[:,:] #N, generated from mlp_loss (golden_functions.py:13)
def grad_mlp_loss(params, x, y):
    # line 14: return np.mean((np.tanh(x @ params["W"] + params["b"]) - y) ** 2)
    _t0 = params['W']
    _t1 = x @ _t0
    _t2 = params['b']
    _t3 = _t1 + _t2
    _t4 = xp.tanh(_t3)
    _t5 = _t4 - y
    _t6 = _t5 ** 2
    # adjoint of line 14: return np.mean((np.tanh(x @ params["W"] + params["b"]) - y) ** 2)
    b_t6 = 1.0 / rt.count(_t6, None)
    b_t5 = b_t6 * 2 * _t5
    b_t4 = rt.unbroadcast(b_t5, _t4, _t5)
    b_t3 = b_t4 * (1 - _t4 * _t4)
    b_t1 = rt.unbroadcast(b_t3, _t1, _t3)
    b_t2 = rt.unbroadcast(b_t3, _t2, _t3)
    bparams = rt.getitem_vjp(b_t2, params, 'b')
    b_t0 = rt.matmul_vjp(b_t1, x, _t0, _t1, 1)
    bparams = rt.add(bparams, rt.getitem_vjp(b_t0, params, 'W'))
    return rt.finalize(bparams, params)
