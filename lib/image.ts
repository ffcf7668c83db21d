// PNG in and out (pngjs), and the AUTOMATIC1111 "parameters" text chunk that records how an image
// was made, so tools that read A1111 metadata show our settings too.
import { PNG } from 'pngjs';

export interface ImageTensor {
  data: Float32Array;
  shape: [number, number, number, number];
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Inserts a tEXt chunk right after IHDR. Latin-1 only, as the PNG spec requires for tEXt. */
export function addPngText(png: Buffer, keyword: string, text: string): Buffer {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) throw new RangeError(`PNG text keyword '${keyword}' is not 1-79 printable Latin-1 characters`);
  const body = Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text.replace(/[^\x00-\xff]/g, '?'), 'latin1')]);
  const chunk = Buffer.alloc(12 + body.length);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write('tEXt', 4, 'latin1');
  body.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  const ihdrEnd = 8 + 12 + png.readUInt32BE(8);
  return Buffer.concat([png.subarray(0, ihdrEnd), chunk, png.subarray(ihdrEnd)]);
}

/** Reads every tEXt chunk of a PNG. */
export function readPngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 8;
  while (p + 12 <= png.length) {
    const len = png.readUInt32BE(p);
    const type = png.toString('latin1', p + 4, p + 8);
    if (p + 12 + len > png.length) break;
    if (type === 'tEXt') {
      const body = png.subarray(p + 8, p + 8 + len);
      const z = body.indexOf(0);
      if (z > 0) out[body.toString('latin1', 0, z)] = body.toString('latin1', z + 1);
    }
    if (type === 'IEND') break;
    p += 12 + len;
  }
  return out;
}

/**
 * One image of a [B, 3, H, W] tensor in [-1, 1] to an 8-bit RGB PNG. Conversion as AUTOMATIC1111:
 * clamp((x + 1) / 2, 0, 1) * 255, truncated.
 */
export function encodePng(img: ImageTensor, index = 0, parameters?: string): Buffer {
  const [b, c, h, w] = img.shape;
  if (c !== 3) throw new RangeError(`image must have 3 channels, got shape [${img.shape.join(', ')}]`);
  if (!(index >= 0 && index < b)) throw new RangeError(`image index ${index} outside batch of ${b}`);
  const png = new PNG({ width: w, height: h, colorType: 2, inputColorType: 6 });
  const plane = h * w;
  const base = index * 3 * plane;
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = (img.data[base + ch * plane + i] + 1) / 2;
      png.data[i * 4 + ch] = Math.trunc(255 * (v > 1 ? 1 : v > 0 ? v : 0));
    }
    png.data[i * 4 + 3] = 255;
  }
  let buf = PNG.sync.write(png, { colorType: 2 });
  if (parameters !== undefined) buf = addPngText(buf, 'parameters', parameters);
  return buf;
}

/** A PNG (any colour type) to a [1, 3, H, W] tensor in [-1, 1]; alpha is ignored. */
export function decodePng(buf: Buffer): ImageTensor {
  let png: PNG;
  try {
    png = PNG.sync.read(buf);
  } catch (err) {
    throw new TypeError(`not a readable PNG image: ${(err as Error).message}`);
  }
  const { width: w, height: h } = png;
  const plane = w * h;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++)
    for (let ch = 0; ch < 3; ch++) data[ch * plane + i] = (png.data[i * 4 + ch] / 255) * 2 - 1;
  return { data, shape: [1, 3, h, w] };
}

/**
 * A mask PNG to [1, 1, H, W] in [0, 1]: white (1) = repaint. Uses luminance of RGB; when the image
 * has transparency, transparent pixels count as repaint too.
 */
export function decodeMaskPng(buf: Buffer): ImageTensor {
  const png = PNG.sync.read(buf);
  const { width: w, height: h } = png;
  const data = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    const [r, g, b, a] = [png.data[i * 4], png.data[i * 4 + 1], png.data[i * 4 + 2], png.data[i * 4 + 3]];
    const lum = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    data[i] = Math.max(lum, 1 - a / 255);
  }
  return { data, shape: [1, 1, h, w] as [number, number, number, number] };
}

/** The AUTOMATIC1111 "parameters" text: prompt, negative prompt, then "Key: value, ..." settings. */
export function formatParameters(prompt: string, negativePrompt: string, settings: Record<string, string | number>): string {
  const kv = Object.entries(settings).map(([k, v]) => `${k}: ${v}`).join(', ');
  return `${prompt}${negativePrompt ? `\nNegative prompt: ${negativePrompt}` : ''}\n${kv}`;
}
