// 32-bit Mersenne Twister (MT19937), seeded like std::mt19937 / torch's at::mt19937 (init_genrand).

export class Mt19937 {
  private readonly state = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    const s = this.state;
    s[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = s[i - 1]! ^ (s[i - 1]! >>> 30);
      s[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  private twist(): void {
    const s = this.state;
    for (let k = 0; k < 624; k++) {
      const y = (s[k]! & 0x80000000) | (s[(k + 1) % 624]! & 0x7fffffff);
      s[k] = s[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  /** Next 32-bit output as an unsigned integer. */
  next(): number {
    if (this.index >= 624) this.twist();
    let y = this.state[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}
