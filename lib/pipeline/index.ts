// The generation pipeline: generate(model, options) and the parts it is made of.
export { generate, parametersText, PIPELINE_VERSION } from './generate.js';
export { resolveOptions, DEFAULTS as GENERATE_DEFAULTS, type ResolvedOptions } from './options.js';
export { encodeConditioning, type Conditioning, type ConditioningOptions } from './conditioning.js';
export { guidedEps, skipsUncond, type GuidanceOptions } from './guidance.js';
export { LATENT_SCALE, previewLatent, resizeBilinear, latentMask } from './images.js';
export { encodeImage } from './img2img.js';
export type {
  GenerateOptions, GenerateResult, GeneratedImage, ImageInput, PipelineModel, Progress, Tensor as PipelineTensor,
} from './types.js';
