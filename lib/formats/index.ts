// One entry point for every model file: picks the reader from the file's first bytes.
import { parseCkpt } from './ckpt.js';
import { parseGguf } from './gguf.js';
import { withFile, type ByteSource } from './io.js';
import { parseSafetensors } from './safetensors.js';
import { ModelFileError, type TensorTable } from './tensor-table.js';
import { looksLikePickle } from './pickle.js';
import { normalizeTable } from '../model/keys.js';

export * from './tensor-table.js';
export { readSafetensors, writeSafetensors, SAFETENSORS_MAX_HEADER, type TensorToWrite } from './safetensors.js';
export { readGguf, writeGguf, GGML_TYPE_NAMES, type GgufKV, type GgufTable, type GgufTensorToWrite } from './gguf.js';
export { readCkpt } from './ckpt.js';
export { writeTorchZip } from './ckpt-write.js';
export { PickleError } from './pickle.js';

/**
 * Reads the tensor table of a .safetensors, .gguf, .ckpt/.pt (zip or legacy) file from its headers.
 * Names and shapes come out in the original checkpoint layout (lib/model/keys.ts `normalizeTable`:
 * old CLIP key spelling renamed, conv shapes of sdnode's quantized GGUF restored); `raw: true`
 * gives them exactly as stored.
 */
export function readTensorTable(path: string, opts: { raw?: boolean } = {}): TensorTable {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be a non-empty string');
  const table = withFile(path, (src) => parseAny(src));
  return opts.raw ? table : normalizeTable(table);
}

export function parseAny(src: ByteSource): TensorTable {
  if (src.size >= 4) {
    const head = src.read(0, Math.min(src.size, 9));
    if (head.subarray(0, 4).toString('latin1') === 'GGUF') return parseGguf(src);
    // safetensors: u64 header length then '{' (checked first: the length's low byte may look like a pickle opcode)
    if (head.length >= 9 && head[8] === 0x7b && head.readUInt32LE(4) === 0) return parseSafetensors(src);
    if (head.readUInt32LE(0) === 0x04034b50 || looksLikePickle(head[0]!)) return parseCkpt(src);
    if (head.length >= 9 && head[8] === 0x7b) return parseSafetensors(src);
  }
  throw new ModelFileError(src.file, 'not a recognised model file (expected safetensors, GGUF or a PyTorch checkpoint)');
}
