// The GPU's MUFU.SIN / MUFU.COS (what __sincosf runs on NVIDIA GPUs), for an angle given in 2^-25 turns.
//
// Measured on an H100: the unit takes the angle as a 25-bit fixed-point fraction of a turn (the input
// to FMUL.RZ(v, 1/2pi) truncated to multiples of 2^-25) and interpolates quadratically in 64 segments
// per quadrant (2^17 inputs each); its result differs from the correctly rounded sine by up to about
// 2^-22 absolute. APPROXIMATION: below we return the exact sine of the quantized angle, rounded to
// float32. That reproduces the angle quantization but not the unit's own rounding, so elements differ
// from torch's by about one float32 ulp (see the rng tests for the measured rate).
import { fround } from './float32.js';

const STEP = (2 * Math.PI) / 33554432;

export function mufuSin(turns: number): number {
  return fround(Math.sin(turns * STEP));
}

export function mufuCos(turns: number): number {
  return fround(Math.cos(turns * STEP));
}
