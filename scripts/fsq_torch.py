"""Times vector-quantize-pytorch's FSQ forward (codes and indices) for levels [8, 5, 5, 5]
on N vectors on the CPU: ns per vector, best of 7, at the default thread count and at one
thread (margay's bench is one thread). Used by scripts/bench-fsq.sh."""
import sys
import time

import torch
from vector_quantize_pytorch import FSQ

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 20
g = torch.Generator().manual_seed(42)
z = (torch.rand(1, n, 4, generator=g) * 2 - 1 + torch.rand(1, n, 4, generator=g) * 2 - 1
     + torch.rand(1, n, 4, generator=g) * 2 - 1)
fsq = FSQ(levels=[8, 5, 5, 5]).eval()
for threads in (torch.get_num_threads(), 1):
    torch.set_num_threads(threads)
    best = float("inf")
    with torch.no_grad():
        fsq(z)
        for _ in range(7):
            t = time.perf_counter()
            codes, idx = fsq(z)
            best = min(best, time.perf_counter() - t)
    print(f"vector-quantize-pytorch FSQ ({threads} thread{'s' if threads > 1 else ''}) "
          f"{best * 1e9 / n:8.2f} ns/vector")
