// The public API: the only import users need.
export { native } from './native.js';
export type { CpuInfo } from './native.js';
export * from './quant.js';
export { StableDiffusion, type BackendKind, type WeightType, type LoadOptions, type Tensor, type ModelInfo, type VaeOptions } from './sd.js';
export { generate, type GenerateOptions, type GenerateResult, type GeneratedImage, type ImageInput, type PipelineModel, type Progress } from './pipeline/index.js';
export { readTensorTable } from './formats/index.js';
export { detectModel, requireSd1, type Detection, type ModelFamily } from './model/detect.js';
export { convertModel, type ConvertOptions, type ConvertResult, type ConvertType } from './model/convert.js';
export { openModel } from './model/open.js';
export { encodePng, decodePng, decodeMaskPng, readPngText, formatParameters, type ImageTensor } from './image.js';
export { SAMPLERS, SAMPLER_NAMES, type SamplerName } from './samplers/index.js';
// Building blocks, for scripts that drive the steps themselves.
export * as formats from './formats/index.js';
export * as tokenizer from './tokenizer/index.js';
export * as samplers from './samplers/index.js';
export * as rng from './rng/index.js';
import { native, type CpuInfo } from './native.js';

/** CPU features and the kernel level the core uses on this machine. */
export function cpuInfo(): CpuInfo {
  return native().cpuInfo();
}
