// Opening a model file for inference: the tensor table in the original key layout and PyTorch
// shapes (whatever the container), and what model it is.
import { readTensorTable } from '../formats/index.js';
import { DTYPE_INFO, type TensorTable } from '../formats/tensor-table.js';
import { detectModel, requireSd1, type Detection } from './detect.js';
import { isNonWeightKey } from './keys.js';

export interface OpenedModel {
  table: TensorTable;
  detection: Detection;
  /** Bytes of the tensors inference uses (non-weight keys excluded), as stored. */
  weightBytes: number;
}

/** Reads headers only. With `requireComplete`, anything but a complete SD 1.x model is an error. */
export function openModel(path: string, opts: { requireComplete?: boolean } = {}): OpenedModel {
  const table = readTensorTable(path);
  const detection = opts.requireComplete ? requireSd1(table) : detectModel(table.tensors);
  let weightBytes = 0;
  for (const t of table.tensors) if (!isNonWeightKey(t.name)) weightBytes += t.byteLength;
  return { table, detection, weightBytes };
}

/** Histogram of dtypes: dtype -> { count, bytes }. */
export function dtypeHistogram(table: TensorTable): Record<string, { count: number; bytes: number }> {
  const h: Record<string, { count: number; bytes: number }> = {};
  for (const t of table.tensors) {
    const e = (h[t.dtype] ??= { count: 0, bytes: 0 });
    e.count++;
    e.bytes += t.byteLength;
  }
  return h;
}

export { DTYPE_INFO };
