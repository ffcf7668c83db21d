#!/usr/bin/env python3
"""PyTorch baseline on the GPU machine: the issue's reference figures, measured on the same card.

The issue gives PyTorch 2.11 fp16 figures for an H200; on another card (an H100, say) our numbers
need PyTorch's from that card. This script builds SD 1.5-shaped networks in plain PyTorch (no
diffusers: the GPU image lacks it) with random fp16 weights and times what sdcuda_tests --bench-model
and --bench-gen time:
  UNet step, batch 2 (CFG), 256x256 and 512x512: eager (scaled_dot_product_attention) and replayed
  as a CUDA graph; VAE decode 512x512; CLIP text encoder (batch 2, 77 tokens); a whole 512x512
  20-step generation (CLIP, 20 UNet calls with an Euler update, VAE decode) with peak VRAM
  (torch.cuda.max_memory_allocated, as the issue's 2.54 GB).
Parameter counts are printed as a check of the architecture (SD 1.5: UNet 859.52 M, VAE decoder
49.49 M, CLIP text 123.06 M).
  python3 scripts/torch-baseline.py            # on a GPU
  python3 scripts/torch-baseline.py --smoke    # CPU, f32, tiny latents: only checks that it runs
"""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def attention(q, k, v, heads, causal=False):
    b, n, c = q.shape
    d = c // heads
    q, k, v = (t.reshape(b, -1, heads, d).transpose(1, 2) for t in (q, k, v))
    if hasattr(F, "scaled_dot_product_attention"):
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:  # torch < 2.0 (the CPU smoke test on Debian's torch)
        s = q @ k.transpose(-1, -2) / math.sqrt(d)
        if causal:
            s = s.masked_fill(torch.ones_like(s, dtype=torch.bool).triu(1), float("-inf"))
        o = s.softmax(-1) @ v
    return o.transpose(1, 2).reshape(b, n, c)


class Attn(nn.Module):
    def __init__(self, c, ctx_dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(c, c, bias=False)
        self.k = nn.Linear(ctx_dim, c, bias=False)
        self.v = nn.Linear(ctx_dim, c, bias=False)
        self.out = nn.Linear(c, c)

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        return self.out(attention(self.q(x), self.k(ctx), self.v(ctx), self.heads))


class Transformer(nn.Module):  # Transformer2DModel with one BasicTransformerBlock, conv proj (SD 1.5)
    def __init__(self, c, heads=8, ctx_dim=768):
        super().__init__()
        self.norm = nn.GroupNorm(32, c, eps=1e-6)
        self.proj_in = nn.Conv2d(c, c, 1)
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(c), nn.LayerNorm(c), nn.LayerNorm(c)
        self.attn1 = Attn(c, c, heads)
        self.attn2 = Attn(c, ctx_dim, heads)
        self.ff_in = nn.Linear(c, 8 * c)  # GEGLU: value and gate
        self.ff_out = nn.Linear(4 * c, c)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        r = x
        x = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(b, h * w, c)
        x = x + self.attn1(self.ln1(x))
        x = x + self.attn2(self.ln2(x), ctx)
        a, g = self.ff_in(self.ln3(x)).chunk(2, dim=-1)
        x = x + self.ff_out(a * F.gelu(g))
        return self.proj_out(x.reshape(b, h, w, c).permute(0, 3, 1, 2)) + r


class Res(nn.Module):
    def __init__(self, cin, cout, temb=1280):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(32, cin, eps=1e-5 if temb else 1e-6), nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(temb, cout) if temb else None
        self.n2, self.c2 = nn.GroupNorm(32, cout, eps=1e-5 if temb else 1e-6), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t=None):
        h = self.c1(F.silu(self.n1(x)))
        if self.t is not None:
            h = h + self.t(F.silu(t))[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):  # SD 1.5 UNet2DConditionModel
    def __init__(self):
        super().__init__()
        ch = [320, 640, 1280, 1280]
        self.t1, self.t2 = nn.Linear(320, 1280), nn.Linear(1280, 1280)
        self.conv_in = nn.Conv2d(4, 320, 3, padding=1)
        self.down = nn.ModuleList()
        skips, c = [320], 320
        for i, co in enumerate(ch):
            for _ in range(2):
                self.down.append(nn.ModuleList([Res(c, co)] + ([Transformer(co)] if i < 3 else [])))
                c = co
                skips.append(c)
            if i < 3:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([Res(1280, 1280), Transformer(1280), Res(1280, 1280)])
        self.up = nn.ModuleList()
        for i, co in enumerate(reversed(ch)):
            for _ in range(3):
                self.up.append(nn.ModuleList([Res(c + skips.pop(), co)] + ([Transformer(co)] if i > 0 else [])))
                c = co
            if i < 3:
                self.up.append(Up(c))
        self.norm_out, self.conv_out = nn.GroupNorm(32, 320), nn.Conv2d(320, 4, 3, padding=1)

    def forward(self, x, t, ctx):
        half = 160
        f = torch.exp(-math.log(10000) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
        e = t.float()[:, None] * f[None]
        temb = self.t2(F.silu(self.t1(torch.cat([e.cos(), e.sin()], -1).to(x.dtype))))
        x = self.conv_in(x)
        hs = [x]
        for blk in self.down:
            if isinstance(blk, nn.Conv2d):
                x = blk(x)
            else:
                x = blk[0](x, temb)
                if len(blk) > 1:
                    x = blk[1](x, ctx)
            hs.append(x)
        x = self.mid[2](self.mid[1](self.mid[0](x, temb), ctx), temb)
        for blk in self.up:
            if isinstance(blk, Up):
                x = blk(x)
            else:
                x = blk[0](torch.cat([x, hs.pop()], 1), temb)
                if len(blk) > 1:
                    x = blk[1](x, ctx)
        return self.conv_out(F.silu(self.norm_out(x)))


class VaeAttn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(32, c, eps=1e-6)
        self.q, self.k, self.v, self.out = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        y = self.out(attention(self.q(y), self.k(y), self.v(y), 1))
        return x + y.transpose(1, 2).reshape(b, c, h, w)


class VaeDecoder(nn.Module):  # AutoencoderKL decoder with post_quant_conv (SD 1.5)
    def __init__(self):
        super().__init__()
        self.pq = nn.Conv2d(4, 4, 1)
        self.conv_in = nn.Conv2d(4, 512, 3, padding=1)
        self.mid = nn.ModuleList([Res(512, 512, 0), VaeAttn(512), Res(512, 512, 0)])
        self.up = nn.ModuleList()
        c = 512
        for i, co in enumerate([512, 512, 256, 128]):
            for _ in range(3):
                self.up.append(Res(c, co, 0))
                c = co
            if i < 3:
                self.up.append(Up(c))
        self.norm_out, self.conv_out = nn.GroupNorm(32, 128, eps=1e-6), nn.Conv2d(128, 3, 3, padding=1)

    def forward(self, z):
        x = self.conv_in(self.pq(z))
        x = self.mid[2](self.mid[1](self.mid[0](x)))
        for blk in self.up:
            x = blk(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class ClipText(nn.Module):  # CLIP ViT-L/14 text encoder: 12 pre-LN layers, 768 wide, quick_gelu
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(49408, 768), nn.Embedding(77, 768)
        self.layers = nn.ModuleList()
        for _ in range(12):
            self.layers.append(nn.ModuleDict(dict(ln1=nn.LayerNorm(768), attn=Attn(768, 768, 12), ln2=nn.LayerNorm(768),
                                                  fc1=nn.Linear(768, 3072), fc2=nn.Linear(3072, 768))))
            self.layers[-1]["attn"].q.bias = nn.Parameter(torch.zeros(768))  # CLIP's q/k/v have biases
            self.layers[-1]["attn"].k.bias = nn.Parameter(torch.zeros(768))
            self.layers[-1]["attn"].v.bias = nn.Parameter(torch.zeros(768))
        self.ln = nn.LayerNorm(768)

    def forward(self, ids):
        x = self.tok(ids) + self.pos.weight[None, : ids.shape[1]]
        for L in self.layers:
            y = L["ln1"](x)
            a = L["attn"]
            x = x + a.out(attention(a.q(y), a.k(y), a.v(y), 12, causal=True))
            y = L["fc1"](L["ln2"](x))
            x = x + L["fc2"](y * torch.sigmoid(1.702 * y))
        return self.ln(x)


def millions(m):
    return sum(p.numel() for p in m.parameters()) / 1e6


def timed(fn, dev, reps=10, warm=3):
    for _ in range(warm):
        fn()
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    ts = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    smoke = "--smoke" in sys.argv
    dev = "cpu" if smoke else "cuda"
    dt = torch.float32 if smoke else torch.float16
    torch.manual_seed(0)
    # Built on the GPU where torch can (2.0+: torch.device as a context): random init of a billion
    # parameters on the CPU would take longer than all the timing.
    where = torch.device(dev) if dev == "cuda" and hasattr(torch.device, "__enter__") else None
    with torch.no_grad():
        if where is not None:
            with where:
                unet, vae, clip = UNet().to(dt).eval(), VaeDecoder().to(dt).eval(), ClipText().to(dt).eval()
        else:
            unet, vae, clip = UNet().to(dev, dt).eval(), VaeDecoder().to(dev, dt).eval(), ClipText().to(dev, dt).eval()
        print(f"torch {torch.__version__} on {torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'}; params: "
              f"UNet {millions(unet):.2f} M, VAE decoder {millions(vae):.2f} M, CLIP text {millions(clip):.2f} M")
        ids = torch.randint(0, 49408, (2, 77), device=dev)
        ctx = clip(ids)
        reps = 1 if smoke else 10
        print(f"  CLIP batch 2: {timed(lambda: clip(ids), dev, reps, 1 if smoke else 3):.2f} ms")
        for px in ([64] if smoke else [256, 512]):
            lat = px // 8
            x = torch.randn(2, 4, lat, lat, device=dev, dtype=dt)
            t = torch.tensor([500.0, 500.0], device=dev)
            eager = timed(lambda: unet(x, t, ctx), dev, reps, 1 if smoke else 3)
            line = f"  UNet {px}x{px} batch 2: eager {eager:.2f} ms"
            if dev == "cuda":
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        unet(x, t, ctx)
                torch.cuda.current_stream().wait_stream(s)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    unet(x, t, ctx)
                line += f", CUDA graph {timed(g.replay, dev):.2f} ms"
                del g
            print(line)
        px = 64 if smoke else 512
        z = torch.randn(1, 4, px // 8, px // 8, device=dev, dtype=dt)
        print(f"  VAE decode {px}x{px}: {timed(lambda: vae(z), dev, reps, 1 if smoke else 3):.2f} ms")
        if dev == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        lat = px // 8
        steps = 2 if smoke else 20

        def generate():
            c = clip(ids)
            x = torch.randn(1, 4, lat, lat, device=dev, dtype=dt) * 14.6
            sig = [14.6 * (1 - i / steps) for i in range(steps + 1)]
            for i in range(steps):
                xin = torch.cat([x, x]) / math.sqrt(sig[i] ** 2 + 1)
                t = torch.full((2,), 999.0 * (1 - i / steps), device=dev)
                e = unet(xin, t, c)
                x = x + (e[1:] + 7.5 * (e[:1] - e[1:])) * (sig[i + 1] - sig[i])
            return vae(x / 0.18215)

        total = timed(generate, dev, 1 if smoke else 3, 1)
        peak = torch.cuda.max_memory_allocated() / 1e9 if dev == "cuda" else 0.0
        print(f"  whole {px}x{px} {steps}-step generation: {total:.1f} ms, peak VRAM {peak:.2f} GB "
              f"(weights {sum(p.numel() * p.element_size() for m in (unet, vae, clip) for p in m.parameters()) / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
