"""Golden vectors for SGDM with accumulation hidden in the momentum (kexue 8634).

After each window of k micro-steps margay's SGDM equals SGD with momentum on the window's
mean gradient, so the reference is `torch.optim.SGD(lr=η·(1−β), momentum=β, dampening=0)`
stepped once per window on the mean of the window's gradients, in float64; between updates
the parameters do not move. Decoupled weight decay (θ·(1 − ηλ), which torch's SGD does not
have) is checked against float64 numpy of the published rule.

    python tests/vectors/gen/sgdm.py > tests/vectors/sgdm.json

Made with torch 2.15.0 and numpy 2.4.6.
"""
import json
import sys

import numpy as np
import torch


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def case(name, lr, beta, k, wd, n, windows, seed):
    rng = np.random.default_rng(seed)
    params = f32(rng.normal(0, 1, n))
    grads = [f32(rng.normal(0, 0.5, n)) for _ in range(windows * k)]
    lr, beta, wd = (float(np.float32(x)) for x in (lr, beta, wd))
    expected = []
    if wd == 0.0:
        p = torch.nn.Parameter(torch.tensor(params, dtype=torch.float64))
        opt = torch.optim.SGD([p], lr=lr * (1 - beta), momentum=beta, dampening=0.0)
        for w in range(windows):
            window = grads[w * k:(w + 1) * k]
            for _ in range(k - 1):
                expected.append(p.detach().numpy().tolist())
            p.grad = torch.tensor(np.mean(window, axis=0), dtype=torch.float64)
            opt.step()
            expected.append(p.detach().numpy().tolist())
        ref = "torch.optim.SGD on window means"
    else:
        p, m = params.copy(), np.zeros(n)
        for t, g in enumerate(grads, start=1):
            b = beta if (t - 1) % k == 0 else 1.0
            m = b * m + (1 - beta) / k * g
            if t % k == 0:
                p = p * (1 - lr * wd) - lr * m
            expected.append(p.tolist())
        ref = "float64 numpy of the rule"
    return {
        "name": name,
        "algorithm": "sgdm",
        "reference": ref,
        "config": {"lr": lr, "momentum": beta, "weight_decay": wd, "accumulation": k},
        "params": params.tolist(),
        "grads": [g.tolist() for g in grads],
        "expected": expected,
        "tolerance": {"abs": 2e-6, "rel": 2e-5},
    }


cases = [
    case("sgdm_k1", 0.1, 0.9, 1, 0.0, 5, 8, 1),
    case("sgdm_k4", 0.05, 0.9, 4, 0.0, 6, 4, 2),
    case("sgdm_k3_beta_half", 0.2, 0.5, 3, 0.0, 4, 4, 3),
    case("sgdm_k2_decoupled_decay", 0.1, 0.9, 2, 0.1, 5, 5, 4),
]
json.dump({
    "format": "margay-vectors/1",
    "kind": "optim",
    "reference": "SGDM: torch.optim.SGD (momentum, dampening 0) on window-mean gradients in float64; "
                 "decoupled decay: float64 numpy of kexue 8634's rule (torch %s, numpy %s)"
                 % (torch.__version__, np.__version__),
    "cases": cases,
}, sys.stdout, indent=1)
print()
