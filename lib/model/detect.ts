// What model is in a file, from tensor names and shapes alone (GGUF files from stable-diffusion.cpp
// carry no metadata). SD 1.x is what sdnode runs; everything else gets a specific message.
import { ModelFileError, type TensorEntry, type TensorTable } from '../formats/tensor-table.js';
import { canonicalName, CLIP_PREFIX, isNonWeightKey, UNET_PREFIX, VAE_PREFIX } from './keys.js';

export type ModelFamily = 'sd1' | 'sd2' | 'sdxl' | 'lora' | 'vae' | 'unknown';

export interface UnetWidths {
  inChannels: number; outChannels: number; modelChannels: number; channelMult: number[];
  timeEmbedDim: number; contextDim: number; numResBlocks: number; transformerDepth: number;
}
export interface ClipWidths { hidden: number; layers: number; heads: number; mlp: number; vocab: number; positions: number }
export interface VaeWidths { ch: number; channelMult: number[]; zChannels: number; embedDim: number; encoder: boolean; decoder: boolean }

export interface Detection {
  family: ModelFamily;
  /** SD 1.x variant: 'inpaint' for a 9-input-channel UNet. */
  variant?: 'txt2img' | 'inpaint';
  parts: { unet: boolean; clip: boolean; vae: boolean };
  unet?: UnetWidths;
  clip?: ClipWidths;
  vae?: VaeWidths;
  /** True when sdnode can generate with this file alone (SD 1.x with all three parts). */
  complete: boolean;
  /** One line for people: what this is, or why it is not usable. */
  message: string;
}

export function detectModel(tensors: readonly Pick<TensorEntry, 'name' | 'shape'>[]): Detection {
  const shapes = new Map<string, number[]>();
  for (const t of tensors) if (!isNonWeightKey(t.name)) shapes.set(canonicalName(t.name), t.shape);
  const names = [...shapes.keys()];
  const has = (p: string) => names.some((n) => n.startsWith(p));
  const dim = (name: string, i: number): number | undefined => shapes.get(name)?.[i];
  const parts = { unet: has(UNET_PREFIX), clip: has(CLIP_PREFIX), vae: has(VAE_PREFIX) };
  const base = { parts, complete: false };

  if (names.some((n) => /lora_(up|down)|\.lora_[AB]\.|^lora_(unet|te\d?)_|\.(hada|lokr)_/.test(n))) {
    return { ...base, family: 'lora', message: `a LoRA/LyCORIS network (${names.length} tensors), not a model: use it with an SD 1.x model through <lora:name:weight> in the prompt` };
  }
  if (has('conditioner.embedders.') || has(`${UNET_PREFIX}label_emb.`)) {
    return { ...base, family: 'sdxl', message: 'an SDXL model; sdnode runs Stable Diffusion 1.x only' };
  }
  if (has('cond_stage_model.model.')) {
    return { ...base, family: 'sd2', message: 'an SD 2.x model (OpenCLIP text encoder); sdnode runs Stable Diffusion 1.x only' };
  }
  const vae = vaeWidths(shapes);
  if (!parts.unet && !parts.clip) {
    if (vae) return { ...base, family: 'vae', vae, message: `a VAE only (${vae.encoder ? 'encoder' : ''}${vae.encoder && vae.decoder ? ' + ' : ''}${vae.decoder ? 'decoder' : ''}), not a full model` };
    if (names.some((n) => /^(encoder|decoder)\.(conv_in|mid)\./.test(n))) {
      return { ...base, family: 'vae', message: 'a standalone VAE (keys without first_stage_model.), not a full model' };
    }
    if (has('down_blocks.') || has('unet.') || has('text_model.')) {
      return { ...base, family: 'unknown', message: 'a diffusers-layout file; sdnode reads the original single-file layout (model.diffusion_model.*, cond_stage_model.*, first_stage_model.*)' };
    }
    return { ...base, family: 'unknown', message: `not a Stable Diffusion model (no UNet, text encoder or VAE keys; first key '${names[0] ?? '(none)'}')` };
  }
  const unet = parts.unet ? unetWidths(shapes, dim) : undefined;
  const clip = parts.clip ? clipWidths(shapes, names) : undefined;
  if (parts.unet && !unet) return { ...base, family: 'unknown', message: `UNet keys found but ${UNET_PREFIX}input_blocks.0.0.weight is missing or not a 4-D conv` };
  if (unet && clip && unet.contextDim !== clip.hidden) {
    return { ...base, family: 'unknown', unet, clip, message: `UNet cross-attention expects context ${unet.contextDim} but the text encoder is ${clip.hidden} wide` };
  }
  if (unet && unet.contextDim === 1024) {
    return { ...base, family: 'sd2', unet, message: 'an SD 2.x UNet (context 1024); sdnode runs Stable Diffusion 1.x only' };
  }
  if (unet && unet.inChannels !== 4 && unet.inChannels !== 9) {
    return { ...base, family: 'unknown', unet, message: `a UNet with ${unet.inChannels} input channels (${unet.inChannels === 8 ? 'instruct-pix2pix' : 'unknown variant'}); sdnode runs SD 1.x txt2img (4) and inpainting (9) UNets` };
  }
  const variant = unet?.inChannels === 9 ? 'inpaint' : 'txt2img';
  const complete = Boolean(unet && clip && vae?.decoder);
  const missing = [!(unet && unet.channelMult.length) && 'UNet', !clip && 'text encoder', !(vae?.decoder) && 'VAE decoder'].filter(Boolean);
  const w = unet && unet.channelMult.length && unet.contextDim ? `UNet ${unet.modelChannels}x[${unet.channelMult.join(',')}], context ${unet.contextDim}` : '';
  const message = `SD 1.x${variant === 'inpaint' ? ' inpainting (9-channel UNet)' : ''}${w ? ` (${w})` : ''}` +
    (missing.length ? `; missing: ${missing.join(', ')}` : '');
  return { family: 'sd1', variant, parts, unet, clip, vae, complete, message };
}

/** Throws a ModelFileError with the detection message unless the file is a complete SD 1.x model. */
export function requireSd1(table: TensorTable, det = detectModel(table.tensors)): Detection {
  if (det.family !== 'sd1' || !det.complete) throw new ModelFileError(table.path, `cannot be used for generation: it is ${det.message}`);
  return det;
}

function unetWidths(shapes: Map<string, number[]>, dim: (n: string, i: number) => number | undefined): UnetWidths | undefined {
  const conv = shapes.get(`${UNET_PREFIX}input_blocks.0.0.weight`);
  if (!conv || conv.length !== 4) return undefined;
  const mc = conv[0]!;
  // The first ResBlock of each level (input_blocks 1, 4, 7, 10) gives that level's width.
  const channelMult: number[] = [];
  for (let lvl = 0, ib = 1; ; lvl++, ib += 3) {
    const w = dim(`${UNET_PREFIX}input_blocks.${ib}.0.out_layers.3.weight`, 0);
    if (w === undefined) break;
    channelMult.push(w / mc);
  }
  const numResBlocks = 2;
  let depth = 0;
  while (shapes.has(`${UNET_PREFIX}input_blocks.1.1.transformer_blocks.${depth}.attn1.to_q.weight`)) depth++;
  let contextDim = dim(`${UNET_PREFIX}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight`, 1);
  if (contextDim === undefined) contextDim = dim(`${UNET_PREFIX}middle_block.1.transformer_blocks.0.attn2.to_k.weight`, 1) ?? 0;
  return {
    inChannels: conv[1]!, outChannels: dim(`${UNET_PREFIX}out.2.weight`, 0) ?? 0, modelChannels: mc, channelMult,
    timeEmbedDim: dim(`${UNET_PREFIX}time_embed.0.weight`, 0) ?? 0, contextDim, numResBlocks, transformerDepth: depth,
  };
}

function clipWidths(shapes: Map<string, number[]>, names: string[]): ClipWidths | undefined {
  const tok = shapes.get(`${CLIP_PREFIX}embeddings.token_embedding.weight`);
  if (!tok || tok.length !== 2) return undefined;
  let layers = 0;
  for (const n of names) {
    const m = /^cond_stage_model\.transformer\.text_model\.encoder\.layers\.(\d+)\./.exec(n);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  const hidden = tok[1]!;
  return {
    hidden, layers, heads: Math.max(1, Math.round(hidden / 64)), vocab: tok[0]!,
    mlp: shapes.get(`${CLIP_PREFIX}encoder.layers.0.mlp.fc1.weight`)?.[0] ?? 0,
    positions: shapes.get(`${CLIP_PREFIX}embeddings.position_embedding.weight`)?.[0] ?? 0,
  };
}

function vaeWidths(shapes: Map<string, number[]>): VaeWidths | undefined {
  const enc = shapes.get(`${VAE_PREFIX}encoder.conv_in.weight`);
  const dec = shapes.get(`${VAE_PREFIX}decoder.conv_in.weight`);
  const post = shapes.get(`${VAE_PREFIX}post_quant_conv.weight`);
  if (!enc && !dec) return undefined;
  const ch = enc?.[0] ?? shapes.get(`${VAE_PREFIX}decoder.conv_out.weight`)?.[1] ?? 0;
  const channelMult: number[] = [];
  for (let i = 0; ; i++) {
    const w = shapes.get(`${VAE_PREFIX}encoder.down.${i}.block.0.conv1.weight`)?.[0] ?? shapes.get(`${VAE_PREFIX}decoder.up.${i}.block.0.conv2.weight`)?.[0];
    if (w === undefined || ch === 0) break;
    channelMult.push(w / ch);
  }
  return {
    ch, channelMult, zChannels: dec?.[1] ?? (shapes.get(`${VAE_PREFIX}encoder.conv_out.weight`)?.[0] ?? 0) / 2,
    embedDim: post?.[0] ?? (shapes.get(`${VAE_PREFIX}quant_conv.weight`)?.[0] ?? 0) / 2,
    encoder: Boolean(enc), decoder: Boolean(dec),
  };
}
