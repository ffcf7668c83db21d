// Classifier-free guidance around the UNet, as an EpsModel the samplers drive.
// One UNet call per model evaluation: the batch is [sub-prompt 0 x B images, ..., sub-prompt P-1 x B,
// uncond x B]. When the negative context has another length than the positive ones (a long prompt
// against a short negative), cond and uncond run as two calls, as A1111 does by default.
// Combination (A1111 combine_denoised, on eps, which is the same for an eps-model):
//   eps = eps_u + sum_p (w_p * cfg) * (eps_p - eps_u)       (float32 at every operation, like torch)
// With one sub-prompt and w * cfg = 1 this is eps_p, so the uncond half is skipped.
import type { CallInfo, EpsModel, Vec } from '../samplers/index.js';
import type { Conditioning } from './conditioning.js';
import type { PipelineModel, Tensor } from './types.js';

const f = Math.fround;

export interface GuidanceOptions {
  batchSize: number;
  /** Latent channels and size of one image: x has batchSize * 4 * h * w values. */
  h: number;
  w: number;
  cfgScale: number;
  /** Extra UNet input channels per image (inpainting checkpoints: mask + masked-image latent, [B, 5, h, w]). */
  concat?: Float32Array;
  concatChannels?: number;
}

/** Whether the unconditional pass can be left out (cfg 1 with one sub-prompt of weight 1). */
export function skipsUncond(weights: readonly number[], cfgScale: number): boolean {
  return weights.length === 1 && f(weights[0]! * cfgScale) === 1;
}

/** Repeats each context `times` times along the batch: [n, L, D] rows in order. */
function stackContexts(parts: readonly Tensor[], times: number): Tensor {
  const [, L, D] = parts[0]!.shape as [number, number, number];
  const per = L * D;
  const data = new Float32Array(parts.length * times * per);
  let row = 0;
  for (const p of parts) for (let b = 0; b < times; b++) data.set(p.data, per * row++);
  return { data, shape: [parts.length * times, L, D] };
}

/** The UNet input for `copies` copies of the B images: x (and the inpainting channels) per row. */
function stackInputs(x: Vec, copies: number, o: GuidanceOptions): Tensor {
  const plane = o.h * o.w;
  const c0 = 4;
  const cc = o.concat ? (o.concatChannels ?? 5) : 0;
  const C = c0 + cc;
  const rows = copies * o.batchSize;
  const data = new Float32Array(rows * C * plane);
  for (let r = 0; r < rows; r++) {
    const b = r % o.batchSize;
    const dst = r * C * plane;
    for (let i = 0; i < c0 * plane; i++) data[dst + i] = x[b * c0 * plane + i]!;
    if (o.concat) data.set(o.concat.subarray(b * cc * plane, (b + 1) * cc * plane), dst + c0 * plane);
  }
  return { data, shape: [rows, C, o.h, o.w] };
}

async function callUnet(model: PipelineModel, x: Vec, t: number, copies: number, ctx: Tensor, o: GuidanceOptions): Promise<Float32Array> {
  const input = stackInputs(x, copies, o);
  const rows = copies * o.batchSize;
  const out = await model.unet(input, new Float32Array(rows).fill(t), ctx);
  const n = rows * 4 * o.h * o.w;
  if (!out || !(out.data instanceof Float32Array) || out.data.length !== n) {
    throw new Error(`the UNet returned ${out?.data?.length ?? 'no'} values, expected ${n} ([${rows}, 4, ${o.h}, ${o.w}])`);
  }
  return out.data;
}

/** Called with each raw UNet answer (cond rows, then uncond rows) for debugging and tests. */
export type EpsTap = (info: CallInfo & { t: number; cond: Float32Array; uncond: Float32Array | undefined }) => void;

/** The guided epsilon model for the samplers. */
export function guidedEps(model: PipelineModel, cond: Conditioning, o: GuidanceOptions, tap?: EpsTap): EpsModel {
  const P = cond.cond.length;
  const B = o.batchSize;
  const n = 4 * o.h * o.w;
  const skip = skipsUncond(cond.weights, o.cfgScale);
  const scales = cond.weights.map((w) => f(w * o.cfgScale));
  const together = !skip && cond.uncond.shape[1] === cond.cond[0]!.shape[1];
  const condCtx = stackContexts(cond.cond, B);
  const allCtx = together ? stackContexts([...cond.cond, cond.uncond], B) : undefined;
  const uncondCtx = !skip && !together ? stackContexts([cond.uncond], B) : undefined;

  return async (x: Vec, t: number, info: CallInfo): Promise<Vec> => {
    let condEps: Float32Array;
    let uncondEps: Float32Array | undefined;
    if (skip) {
      condEps = await callUnet(model, x, t, 1, condCtx, o);
    } else if (allCtx) {
      const all = await callUnet(model, x, t, P + 1, allCtx, o);
      condEps = all.subarray(0, P * B * n);
      uncondEps = all.subarray(P * B * n);
    } else {
      condEps = await callUnet(model, x, t, P, condCtx, o);
      uncondEps = await callUnet(model, x, t, 1, uncondCtx!, o);
    }
    tap?.({ ...info, t, cond: condEps, uncond: uncondEps });
    const eps = new Float32Array(B * n);
    if (!uncondEps) {
      eps.set(condEps);
    } else {
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < n; i++) {
          const u = uncondEps[b * n + i]!;
          let e = u;
          for (let p = 0; p < P; p++) e = f(e + f(f(condEps[(p * B + b) * n + i]! - u) * scales[p]!));
          eps[b * n + i] = e;
        }
      }
    }
    for (let i = 0; i < eps.length; i++) {
      if (!Number.isFinite(eps[i]!)) {
        throw new Error(
          `step ${info.step + 1}: the UNet produced non-finite values (NaN or Infinity) at t = ${t.toFixed(3)}; ` +
          'the weights may be corrupt or the cfgScale too large for this model',
        );
      }
    }
    return eps;
  };
}
