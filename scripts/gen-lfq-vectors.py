#!/usr/bin/env python3
"""Writes tests/vectors/lfq.json: golden LFQ values from vector-quantize-pytorch's
LookupFreeQuantization in float64 (training mode, one codebook, no projection).

Run with a Python that has torch and vector-quantize-pytorch, e.g.
    python3 -m venv /tmp/vqenv && /tmp/vqenv/bin/pip install vector-quantize-pytorch==1.32.0
    /tmp/vqenv/bin/python scripts/gen-lfq-vectors.py
Inputs are drawn in float32 and widened, so every input is exact in f32.
"""
import json
import sys

import torch
import vector_quantize_pytorch as vqp
from vector_quantize_pytorch import LFQ

torch.set_default_dtype(torch.float64)


def case(name, dim, rows, spread, inv_temperature, gamma, scale, seed):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(rows, dim, generator=g, dtype=torch.float32) * spread).double()
    # One exact zero: LFQ maps 0 to -scale (x > 0 is false).
    z[0, 0] = 0.0
    q = LFQ(dim=dim, codebook_size=2**dim, entropy_loss_weight=1.0, commitment_loss_weight=0.0,
            diversity_gamma=gamma, codebook_scale=scale, force_quantization_f32=False).double()
    q.train()
    x = z.clone().view(1, rows, dim).requires_grad_(True)
    (out, idx, aux), (per_sample, batch_entropy, _) = q(x, inv_temperature=inv_temperature,
                                                       return_loss_breakdown=True)
    aux.backward()
    codes = out.detach().view(rows, dim)
    return {
        "name": name,
        "dim": dim,
        "inv_temperature": inv_temperature,
        "diversity_gamma": gamma,
        "codebook_scale": scale,
        "z": z.tolist(),
        "codes": codes.tolist(),
        "indices": idx.view(rows).tolist(),
        "per_sample_entropy": per_sample.item(),
        "codebook_entropy": batch_entropy.item(),
        "aux_loss": aux.item(),
        "grad": x.grad.view(rows, dim).tolist(),
        "tolerance": {"abs": 2e-5, "rel": 1e-4},
        "grad_tolerance": {"abs": 1e-5, "rel": 1e-4},
    }


cases = [
    case("lfq_d4_soft", 4, 16, 0.01, 100.0, 1.0, 1.0, 1),
    case("lfq_d6_mixed", 6, 24, 0.003, 100.0, 1.0, 1.0, 2),
    case("lfq_d8_gamma", 8, 32, 0.005, 100.0, 0.5, 1.0, 3),
    case("lfq_d5_scale", 5, 12, 0.02, 30.0, 1.0, 0.5, 4),
    case("lfq_d10_sharp", 10, 8, 1.0, 100.0, 1.0, 1.0, 5),
]
doc = {
    "format": "margay-vectors/1",
    "kind": "lfq",
    "reference": f"vector_quantize_pytorch.LFQ training forward and backward of entropy_aux_loss in float64 "
                 f"(torch {torch.__version__}, vector-quantize-pytorch {vqp.__version__ if hasattr(vqp, '__version__') else '1.32.0'})",
    "generator": "scripts/gen-lfq-vectors.py",
    "cases": cases,
}
json.dump(doc, open(sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/lfq.json", "w"), indent=None)
print(f"{len(cases)} cases")
