// Pipeline tests without the native networks: a fake model whose networks are simple deterministic
// functions, and an independent re-computation of the sampling math (the e2e algorithm of
// ../shared/fixtures/tiny-sd15/README.md written out in plain float64 loops).

export const D = 16; // fake CLIP width

/** A fake PipelineModel. Every call is logged in `calls`. */
export function fakeModel({ inChannels = 4, nanAt = -1 } = {}) {
  const calls = [];
  let unetCalls = 0;
  return {
    calls,
    info: { unet: { inChannels, contextDim: D }, clip: { hidden: D } },
    async encodeText(tokens, { clipSkip = 1 } = {}) {
      calls.push({ fn: 'encodeText', shape: tokens.shape.slice(), clipSkip, ids: Int32Array.from(tokens.data) });
      const [B, L] = tokens.shape;
      const out = new Float32Array(B * L * D);
      for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) for (let d = 0; d < D; d++) {
        out[(b * L + l) * D + d] = fakeClip(tokens.data[b * L + l], l % 77, d, clipSkip);
      }
      return { data: out, shape: [B, L, D] };
    },
    async unet(x, t, ctx) {
      const [B, C, h, w] = x.shape;
      const L = ctx.shape[1];
      calls.push({ fn: 'unet', shape: x.shape.slice(), t: Array.from(t), L, x: Float32Array.from(x.data) });
      const call = unetCalls++;
      const out = new Float32Array(B * 4 * h * w);
      for (let b = 0; b < B; b++) {
        const cm = ctxMean(ctx.data.subarray(b * L * D, (b + 1) * L * D));
        for (let c = 0; c < 4; c++) for (let i = 0; i < h * w; i++) {
          const xi = x.data[(b * C + c) * h * w + i];
          const extra = C === 9 ? 0.3 * x.data[(b * C + 4) * h * w + i] + 0.2 * x.data[(b * C + 5 + c) * h * w + i] : 0;
          out[(b * 4 + c) * h * w + i] = fakeEps(xi, t[b], c, i, cm) + extra;
        }
      }
      if (call === nanAt) out[3] = NaN;
      return { data: out, shape: [B, 4, h, w] };
    },
    async vaeDecode(z) {
      calls.push({ fn: 'vaeDecode', shape: z.shape.slice() });
      const [B, , h, w] = z.shape;
      const H = 8 * h, W = 8 * w;
      const out = new Float32Array(B * 3 * H * W);
      for (let b = 0; b < B; b++) for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        out[((b * 3 + c) * H + y) * W + x] = fakeDecode(z.data[((b * 4 + c) * h + (y >> 3)) * w + (x >> 3)], y, x);
      }
      return { data: out, shape: [B, 3, H, W] };
    },
    async vaeEncode(img) {
      calls.push({ fn: 'vaeEncode', shape: img.shape.slice(), data: Float32Array.from(img.data) });
      const [B, , H, W] = img.shape;
      const h = H / 8, w = W / 8;
      const out = new Float32Array(B * 8 * h * w);
      for (let b = 0; b < B; b++) for (let c = 0; c < 4; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        out[((b * 8 + c) * h + y) * w + x] = fakeEncode(img.data, b, c, y, x, H, W);
        out[((b * 8 + 4 + c) * h + y) * w + x] = -3; // logvar, unused
      }
      return { data: out, shape: [B, 8, h, w] };
    },
  };
}

export function fakeClip(id, pos, d, skip) {
  return Math.sin(id * 0.013 + d * 0.37 + pos * 0.05) * (skip === 2 ? 0.5 : 1) + 0.1 * d / D;
}
export function ctxMean(ctx) {
  let s = 0;
  for (let i = 0; i < ctx.length; i++) s += ctx[i] * ((i % 7) - 3);
  return s / ctx.length;
}
export function fakeEps(x, t, c, i, cm) {
  return 0.6 * x + 0.2 * Math.cos(t / 150 + c + i * 0.1) + cm;
}
export function fakeDecode(z, y, x) {
  return Math.tanh(z * 0.4) * 1.3 + 0.01 * ((x + y) % 3);
}
/** Mean of channel (c % 3) over the 8x8 block, times 2 minus c / 4. */
export function fakeEncode(img, b, c, y, x, H, W) {
  let s = 0;
  for (let dy = 0; dy < 8; dy++) for (let dx = 0; dx < 8; dx++) s += img[((b * 3 + (c % 3)) * H + y * 8 + dy) * W + x * 8 + dx];
  return (s / 64) * 2 - c / 4;
}

// ---- schedule, from the README formula (float64) ----
const T = 1000;
const logsig = (() => {
  const out = new Float64Array(T);
  let ac = 1;
  for (let s = 0; s < T; s++) {
    const b = (Math.sqrt(0.00085) + (s / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085))) ** 2;
    ac *= 1 - b;
    out[s] = Math.log(Math.sqrt((1 - ac) / ac));
  }
  return out;
})();
export const alphasCumprod = (() => {
  const out = new Float64Array(T);
  let ac = 1;
  for (let s = 0; s < T; s++) {
    const b = (Math.sqrt(0.00085) + (s / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085))) ** 2;
    ac *= 1 - b;
    out[s] = ac;
  }
  return out;
})();
function sigmaOfT(t) {
  const lo = Math.floor(t), hi = Math.ceil(t), w = t - lo;
  return Math.exp((1 - w) * logsig[lo] + w * logsig[hi]);
}
export function tOfSigma(sigma) {
  const ls = Math.log(sigma);
  let low = 0;
  for (let i = 0; i < T; i++) if (logsig[i] <= ls) low = i;
  low = Math.min(low, T - 2);
  const w = Math.min(Math.max((logsig[low] - ls) / (logsig[low] - logsig[low + 1]), 0), 1);
  return low + w;
}
export function refSigmas(N) {
  const s = [];
  for (let i = 0; i < N; i++) s.push(sigmaOfT(N === 1 ? 999 : 999 - (999 * i) / (N - 1)));
  s.push(0);
  return s;
}

/**
 * Euler with CFG on the fake model, float64. conds: [{ ctx: Float32Array (L*D), weight }], uncond ctx,
 * x: start latent for one image [4*h*w]; sigmas: the run's list; blend(i, x) optional after-step hook.
 */
export function refEuler({ conds, uncond, x: x0, sigmas, cfg, h, w, concat, blend }) {
  const n = 4 * h * w;
  const x = Float64Array.from(x0);
  const eps = (xin, t, ctx) => {
    const cm = ctxMean(ctx);
    const out = new Float64Array(n);
    for (let c = 0; c < 4; c++) for (let i = 0; i < h * w; i++) {
      const extra = concat ? 0.3 * concat[i] + 0.2 * concat[(1 + c) * h * w + i] : 0;
      out[c * h * w + i] = fakeEps(xin[c * h * w + i], t, c, i, cm) + extra;
    }
    return out;
  };
  for (let s = 0; s + 1 < sigmas.length; s++) {
    const sig = sigmas[s];
    const cin = 1 / Math.sqrt(sig * sig + 1);
    const t = tOfSigma(sig);
    const xin = x.map((v) => v * cin);
    const eu = uncond ? eps(xin, t, uncond) : undefined;
    const e = new Float64Array(n);
    const ecs = conds.map((c) => eps(xin, t, c.ctx));
    for (let i = 0; i < n; i++) {
      if (!eu) { e[i] = ecs[0][i]; continue; }
      let v = eu[i];
      conds.forEach((c, p) => { v += c.weight * cfg * (ecs[p][i] - eu[i]); });
      e[i] = v;
    }
    for (let i = 0; i < n; i++) {
      const den = x[i] - sig * e[i];
      x[i] = x[i] + ((x[i] - den) / sig) * (sigmas[s + 1] - sig);
    }
    blend?.(s, x);
  }
  return x;
}

/** A1111 emphasis ('original'), written out: scale rows, restore the chunk mean. */
export function refEmphasis(z, weights) {
  const out = Float64Array.from(z);
  for (let c = 0; c < weights.length / 77; c++) {
    let before = 0, after = 0;
    for (let r = 0; r < 77; r++) for (let d = 0; d < D; d++) {
      const k = (c * 77 + r) * D + d;
      before += out[k];
      out[k] *= weights[c * 77 + r];
      after += out[k];
    }
    for (let r = 0; r < 77 * D; r++) out[c * 77 * D + r] *= before / after;
  }
  return out;
}

/** The fake CLIP output [L*D] for a token list, emphasis applied. */
export function refContext(tokens, weights, skip = 1) {
  const z = new Float64Array(tokens.length * D);
  for (let l = 0; l < tokens.length; l++) for (let d = 0; d < D; d++) z[l * D + d] = Math.fround(fakeClip(tokens[l], l % 77, d, skip));
  return weights ? refEmphasis(z, weights) : z;
}

export function maxRel(a, ref) {
  let scale = 1e-12, err = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  if (a.length !== ref.length) return Infinity;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  return err / scale;
}

/** Standard normal-ish deterministic values (not the RNG under test). */
export function pseudoNoise(n, seed = 1) {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = (s / 2147483648) * 3.4 - 1.7;
  }
  return out;
}
