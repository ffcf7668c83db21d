// The public API: the only import users need.
export { native } from './native.js';
export type { CpuInfo } from './native.js';
export * from './quant.js';
export { generate, type GenerateOptions, type GenerateResult, type GeneratedImage, type ImageInput, type PipelineModel, type Progress } from './pipeline/index.js';
import { native, type CpuInfo } from './native.js';

/** CPU features and the kernel level the core uses on this machine. */
export function cpuInfo(): CpuInfo {
  return native().cpuInfo();
}
