"""Newton-Schulz in PyTorch on the CPU, one thread: torch.optim.Muon's stock
orthogonalization (`_zeropower_via_newtonschulz`, bf16) and the same iteration in f32.
Prints `newton-schulz RxC torch <kind> T ms` per shape (median of ROUNDS calls)."""
import statistics
import sys
import time

import torch

torch.set_num_threads(1)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
A, B, C = (3.4445, -4.7750, 2.0315)


def newton_schulz(g, dtype, steps=5, eps=1e-7):
    """The quintic iteration in `dtype` (Keller Jordan's reference, what torch.optim.Muon runs)."""
    x = g.to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        a = x @ x.T
        b = B * a + C * a @ a
        x = A * x + b @ x
    return x.T if tall else x


def ns_f32(g):
    return newton_schulz(g, torch.float32)


try:
    from torch.optim._muon import _zeropower_via_newtonschulz as stock

    def ns_stock(g):
        return stock(g, (A, B, C), 5, 1e-7)
except ImportError:  # a torch without torch.optim.Muon: the same iteration in bf16

    def ns_stock(g):
        return newton_schulz(g, torch.bfloat16)


for rows, cols in [(128, 128), (128, 512), (768, 768)]:
    n = rows * cols
    # The Rust bench's input: ((i * 7919) % 2001) / 1000 - 1.
    g = torch.tensor([((i * 7919) % 2001) / 1000.0 - 1.0 for i in range(n)]).reshape(rows, cols)
    for name, fn in [("bf16 (stock)", ns_stock), ("f32", ns_f32)]:
        fn(g)
        ts = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn(g)
            ts.append(time.perf_counter() - t)
        print(f"newton-schulz {rows}x{cols} torch {name} {statistics.median(ts) * 1e3:.3f} ms")
