"""Golden vectors for AdaX / AdaX-W from the official implementation.

Runs `AdaX` and `AdaXW` from switchablenorms/AdaX (`AdaX.py`, commit e18f35f) in float64 on
inputs exactly representable in f32, and writes `tests/vectors/adax.json` (format
`margay-vectors/1`, kind `optim`, algorithms `adax` and `adaxw`).

    git clone https://github.com/switchablenorms/AdaX /tmp/AdaX
    python tests/vectors/gen/adax.py /tmp/AdaX > tests/vectors/adax.json

Made with torch 2.15.0 and numpy 2.4.6. The official file uses the pre-1.5 call forms
`add_(scalar, tensor)`, `addcmul_(scalar, t1, t2)` and `addcdiv_(scalar, t1, t2)`, which
torch 2.x rejects; the shim below maps them to `alpha=` / `value=` without touching the
arithmetic.
"""
import json
import numbers
import sys

import numpy as np
import torch

_add, _addcmul, _addcdiv = torch.Tensor.add_, torch.Tensor.addcmul_, torch.Tensor.addcdiv_


def _legacy(orig, kw):
    def f(self, *args, **kwargs):
        if args and isinstance(args[0], numbers.Number) and len(args) >= 2 and torch.is_tensor(args[1]):
            return orig(self, *args[1:], **{kw: args[0]}, **kwargs)
        return orig(self, *args, **kwargs)
    return f


torch.Tensor.add_ = _legacy(_add, "alpha")
torch.Tensor.addcmul_ = _legacy(_addcmul, "value")
torch.Tensor.addcdiv_ = _legacy(_addcdiv, "value")

sys.path.insert(0, sys.argv[1])
from AdaX import AdaX, AdaXW  # noqa: E402  (the official code)


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def case(name, algorithm, cls, cfg, n, steps, seed, zero_grad_at=None):
    rng = np.random.default_rng(seed)
    params = f32(rng.normal(0, 1, n))
    grads = [f32(rng.normal(0, 0.1, n)) for _ in range(steps)]
    if zero_grad_at is not None:
        for g in grads:
            g[zero_grad_at] = 0.0
    p = torch.nn.Parameter(torch.tensor(params, dtype=torch.float64))
    opt = cls([p], lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
              weight_decay=cfg["weight_decay"])
    expected = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        expected.append(p.detach().numpy().tolist())
    return {
        "name": name,
        "algorithm": algorithm,
        "config": cfg,
        "params": params.tolist(),
        "grads": [g.tolist() for g in grads],
        "expected": expected,
        "tolerance": {"abs": 2e-6, "rel": 2e-5},
    }


def cfg(lr, wd, beta1=0.9, beta2=1e-4, eps=1e-12):
    # Hyper-parameters as f32 values, as margay reads them.
    return {k: float(np.float32(v)) for k, v in
            dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd).items()}


cases = [
    case("adaxw_defaults", "adaxw", AdaXW, cfg(5e-3, 5e-2), 6, 8, 1),
    case("adaxw_zero_grad_coordinate", "adaxw", AdaXW, cfg(5e-3, 5e-2), 4, 6, 2, zero_grad_at=1),
    case("adaxw_large_beta2_eps", "adaxw", AdaXW, cfg(1e-2, 0.0, beta1=0.8, beta2=1e-2, eps=1e-3), 5, 10, 3),
    case("adax_l2_defaults", "adax", AdaX, cfg(1.5e-3, 5e-4), 6, 8, 4),
    case("adax_l2_strong", "adax", AdaX, cfg(1e-2, 1e-1, beta2=1e-3, eps=1e-6), 5, 10, 5),
]
json.dump({
    "format": "margay-vectors/1",
    "kind": "optim",
    "reference": "AdaX/AdaXW: switchablenorms/AdaX AdaX.py (e18f35f) in float64, torch %s, numpy %s"
                 % (torch.__version__, np.__version__),
    "cases": cases,
}, sys.stdout, indent=1)
print()
