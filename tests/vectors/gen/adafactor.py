"""Golden vectors for Adafactor from PyTorch (`torch.optim.Adafactor`), in float64.

margay follows PyTorch's conventions (factored on the last two dims, row/column means of g²
with no ε inside, V̂ = R·C/max(mean(R), ε₁) floored at ε₁², α = max(ε₂, RMS(θ))·min(lr, 1/√t),
decay θ·(1 − lr·λ)). ε₁ is passed explicitly as f32's epsilon (PyTorch's `eps1=None` means
the dtype's epsilon, which in float64 would differ from margay's f32 default). Writes
`tests/vectors/adafactor.json` (kind `optim`, algorithm `adafactor`, config `shape`).

    python tests/vectors/gen/adafactor.py > tests/vectors/adafactor.json

Made with torch 2.15.0 and numpy 2.4.6.
"""
import json
import sys

import numpy as np
import torch

EPS1 = float(np.finfo(np.float32).eps)


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def case(name, shape, lr, wd, d, steps, seed, eps2=1e-3, decay=-0.8, zero_row=False):
    rng = np.random.default_rng(seed)
    params = f32(rng.normal(0, 0.5, shape))
    grads = [f32(rng.normal(0, 0.1, shape)) for _ in range(steps)]
    if zero_row:
        for g in grads:
            g[0] = 0.0
    lr, wd, d, eps2, decay = (float(np.float32(x)) for x in (lr, wd, d, eps2, decay))
    p = torch.nn.Parameter(torch.tensor(params, dtype=torch.float64))
    opt = torch.optim.Adafactor([p], lr=lr, beta2_decay=decay, eps=(EPS1, eps2), d=d,
                                weight_decay=wd, foreach=False)
    expected = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        expected.append(p.detach().numpy().reshape(-1).tolist())
    return {
        "name": name,
        "algorithm": "adafactor",
        "config": {"lr": lr, "beta2_decay": decay, "eps1": float(np.float32(EPS1)), "eps2": eps2,
                   "d": d, "weight_decay": wd, "shape": list(shape)},
        "params": params.reshape(-1).tolist(),
        "grads": [g.reshape(-1).tolist() for g in grads],
        "expected": expected,
        "tolerance": {"abs": 2e-6, "rel": 2e-5},
    }


cases = [
    case("adafactor_matrix_defaults", (4, 6), 1e-2, 0.0, 1.0, 8, 1),
    case("adafactor_matrix_decay_clip", (5, 3), 3e-2, 0.1, 2.0, 10, 2),
    case("adafactor_matrix_zero_row", (3, 4), 1e-2, 0.0, 1.0, 6, 3, zero_row=True),
    case("adafactor_vector", (7,), 1e-2, 0.01, 1.0, 8, 4),
    case("adafactor_tall_matrix_slow_decay", (8, 2), 5e-3, 0.0, 1.0, 12, 5, decay=-0.5),
]
json.dump({
    "format": "margay-vectors/1",
    "kind": "optim",
    "reference": "Adafactor: torch.optim.Adafactor (foreach=False) in float64, torch %s, numpy %s"
                 % (torch.__version__, np.__version__),
    "cases": cases,
}, sys.stdout, indent=1)
print()
