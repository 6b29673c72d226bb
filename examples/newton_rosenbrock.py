"""Newton's method on the Rosenbrock function with codax.grad and codax.hessian.

Run: python examples/newton_rosenbrock.py

Each step solves (H + lam I) p = -g, where lam = 0 if the Hessian H is positive
definite and otherwise grows until H + lam I is (a Levenberg damping), then
backtracks along p until the Armijo condition holds. The 2-D run starts at the
classic (-1.2, 1); the 10-D run at (-1.2, ..., -1.2). (In 4 or more dimensions
the Rosenbrock function also has a local minimum near (-1, 1, ..., 1), which
starts such as (-1.2, 1, -1.2, 1, ...) fall into.)
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout
import codax  # noqa: E402


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def newton(f, x, tol=1e-10, max_iter=100, verbose=True):
    grad_f, hess_f = codax.grad(f), codax.hessian(f)
    eye = np.eye(x.size)
    for it in range(max_iter):
        fx, g, H = f(x), grad_f(x), hess_f(x)
        gnorm = np.linalg.norm(g)
        if verbose:
            print(f"  iter {it:3d}  f = {fx:11.4e}  |grad| = {gnorm:9.2e}", end="")
        if gnorm < tol:
            if verbose:
                print()
            return x, it
        lam = 0.0
        while True:                                     # damp until positive definite
            try:
                np.linalg.cholesky(H + lam * eye)
                break
            except np.linalg.LinAlgError:
                lam = max(10.0 * lam, 1e-3)
        p = np.linalg.solve(H + lam * eye, -g)
        t = 1.0
        while f(x + t * p) > fx + 1e-4 * t * (g @ p) and t > 1e-12:    # Armijo backtracking
            t *= 0.5
        if verbose:
            print(f"  damping = {lam:8.2e}  step = {t:.4g}")
        x = x + t * p
    raise RuntimeError(f"Newton did not converge in {max_iter} iterations (x = {x})")


def main():
    for x0 in (np.array([-1.2, 1.0]), np.full(10, -1.2)):
        print(f"Rosenbrock in {x0.size}-D from x0 = {x0}")
        x, iters = newton(rosenbrock, x0)
        print(f"converged in {iters} iterations to x = {np.array2string(x, precision=10)}")
        assert np.allclose(x, 1.0, atol=1e-8), x
        print()

    print("Generated source of codax.grad(rosenbrock) for a 2-D float64 input:\n")
    print(codax.grad(rosenbrock).source(np.zeros(2)))


if __name__ == "__main__":
    main()
