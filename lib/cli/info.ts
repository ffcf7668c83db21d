// `sdnode info <file> [--json]`: format, detected model, tensor count, dtype histogram, size on disk,
// and the memory loading would need (per --type when given).
import { openModel, dtypeHistogram } from '../model/open.js';
import { CONVERT_TYPES, planConversion, plannedBytes, type ConvertType } from '../model/convert.js';
import { formatBytes, parseArgs } from './args.js';

export interface ModelInfo {
  file: string;
  format: string;
  sizeOnDisk: number;
  model: string;
  family: string;
  complete: boolean;
  tensors: number;
  dtypes: Record<string, { count: number; bytes: number }>;
  /** Bytes of weights when loaded as stored, and after conversion to each type. */
  loadBytes: Record<string, number>;
  metadata: Record<string, unknown>;
}

export function modelInfo(path: string): ModelInfo {
  const { table, detection, weightBytes } = openModel(path);
  const loadBytes: Record<string, number> = { stored: weightBytes };
  for (const t of CONVERT_TYPES) {
    try {
      loadBytes[t] = planConversion(table, t as ConvertType).plan.reduce((a, p) => a + plannedBytes(p), 0);
    } catch { /* already quantized: no re-quantization */ }
  }
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(table.metadata)) {
    metadata[k] = Array.isArray(v) ? `[${v.length} values]` : typeof v === 'bigint' ? v.toString() : v;
  }
  return {
    file: path, format: table.format, sizeOnDisk: table.fileSize, model: detection.message, family: detection.family,
    complete: detection.complete, tensors: table.tensors.length, dtypes: dtypeHistogram(table), loadBytes, metadata,
  };
}

/** Returns the process exit code. */
export function runInfo(argv: readonly string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error): number {
  const { positional, flags } = parseArgs(argv, ['json']);
  if (positional.length !== 1) {
    err('usage: sdnode info <model.safetensors|.ckpt|.gguf> [--json]');
    return 2;
  }
  let info: ModelInfo;
  try {
    info = modelInfo(positional[0]!);
  } catch (e) {
    err(`sdnode info: ${(e as Error).message}`);
    return 1;
  }
  if (flags.has('json')) {
    out(JSON.stringify(info, null, 2));
    return 0;
  }
  out(`file:      ${info.file}`);
  out(`format:    ${info.format}, ${formatBytes(info.sizeOnDisk)} on disk`);
  out(`model:     ${info.model}${info.family === 'sd1' && !info.complete ? ' (incomplete)' : ''}`);
  out(`tensors:   ${info.tensors}`);
  for (const [dt, h] of Object.entries(info.dtypes)) out(`  ${dt.padEnd(6)} ${String(h.count).padStart(5)} tensors  ${formatBytes(h.bytes)}`);
  out(`memory to load the weights: ${formatBytes(info.loadBytes.stored!)} as stored` +
    Object.entries(info.loadBytes).filter(([k]) => k !== 'stored').map(([k, v]) => `, ${formatBytes(v)} as ${k}`).join(''));
  return 0;
}
