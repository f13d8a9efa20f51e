"""Hugging Face-style RoPE on the CPU (cached cos/sin, rotate_half), for bench-rope.sh.

Prints one line per thread count: ns/element and GB/s at 8 bytes per element, the same
convention as `cargo bench --bench rope`. Usage: rope_torch.py HEADS SEQ DIM
"""
import sys
import time

import torch


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def main():
    heads, seq, dim = (int(a) for a in sys.argv[1:4])
    base = 10000.0
    # As transformers' default RoPE init: inv_freq and positions in f32.
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    t = torch.arange(seq, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    q = torch.randn(1, heads, seq, dim)
    n = q.numel()
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        times = []
        for _ in range(10):
            start = time.perf_counter()
            out = (q * cos) + (rotate_half(q) * sin)
            times.append(time.perf_counter() - start)
            del out
        times.sort()
        m = times[len(times) // 2]
        print(f"PyTorch {torch.__version__} HF-style, {threads} thread(s): {m * 1e9 / n:.3f} ns/elem {8 * n / m / 1e9:.2f} GB/s")


if __name__ == "__main__":
    main()
