"""Golden vectors for cautious Lion from lion-pytorch 0.2.5 (`lion_pytorch/cautious_lion.py`).

Runs lion-pytorch's cautious `Lion` (Liang et al. 2024, arXiv 2411.16085, algorithm 2) in
float64 on inputs exactly representable in f32; writes `tests/vectors/cautious.json`
(kind `optim`, algorithm `lion_cautious`).

    pip download lion-pytorch==0.2.5 --no-deps -d /tmp/lp && (cd /tmp/lp && unzip -o *.whl)
    python tests/vectors/gen/cautious_lion.py /tmp/lp > tests/vectors/cautious.json

Made with torch 2.15.0, numpy 2.4.6, lion-pytorch 0.2.5.
"""
import json
import sys

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
from lion_pytorch.cautious_lion import Lion  # noqa: E402


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def case(name, lr, betas, wd, factor, n, steps, seed):
    rng = np.random.default_rng(seed)
    params = f32(rng.normal(0, 1, n))
    grads = [f32(rng.normal(0, 0.1, n)) for _ in range(steps)]
    lr, wd, factor = (float(np.float32(x)) for x in (lr, wd, factor))
    betas = tuple(float(np.float32(b)) for b in betas)
    p = torch.nn.Parameter(torch.tensor(params, dtype=torch.float64))
    opt = Lion([p], lr=lr, betas=betas, weight_decay=wd, cautious_factor=factor)
    expected = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        expected.append(p.detach().numpy().tolist())
    return {
        "name": name,
        "algorithm": "lion_cautious",
        "config": {"lr": lr, "beta1": betas[0], "beta2": betas[1], "weight_decay": wd,
                   "cautious_factor": factor},
        "params": params.tolist(),
        "grads": [g.tolist() for g in grads],
        "expected": expected,
        "tolerance": {"abs": 2e-6, "rel": 2e-5},
    }


cases = [
    case("cautious_lion_freeze", 1e-3, (0.9, 0.99), 0.0, 0.0, 16, 8, 1),
    case("cautious_lion_factor_quarter_decay", 3e-3, (0.9, 0.99), 0.1, 0.25, 12, 8, 2),
    case("cautious_lion_small_beta", 1e-2, (0.5, 0.9), 0.5, 0.0, 9, 10, 3),
]
json.dump({
    "format": "margay-vectors/1",
    "kind": "optim",
    "reference": "cautious Lion: lion-pytorch 0.2.5 cautious_lion.Lion in float64, torch %s, numpy %s"
                 % (torch.__version__, np.__version__),
    "cases": cases,
}, sys.stdout, indent=1)
print()
