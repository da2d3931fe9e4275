/**
 * A set of small integers (pod class ids), as 32-bit words. It grows when a member beyond
 * its size is added (a new pod class); bits beyond the size read as absent.
 */
export class Bitset {
  private bits: Uint32Array;
  private length: number;

  constructor(size: number) {
    this.length = size;
    this.bits = new Uint32Array(Math.ceil(size / 32));
  }

  get size(): number {
    return this.length;
  }

  get words(): Uint32Array {
    return this.bits;
  }

  static full(size: number): Bitset {
    const set = new Bitset(size);
    set.words.fill(0xffffffff);
    const tail = size % 32;
    if (tail !== 0) set.words[set.words.length - 1] = (1 << tail) - 1;
    return set;
  }

  add(i: number): void {
    if (i >= this.length) this.grow(i + 1);
    this.bits[i >>> 5] = (this.bits[i >>> 5] ?? 0) | (1 << (i & 31));
  }

  /** Room for members below `size`; capacity doubles, so growing one by one stays cheap. */
  private grow(size: number): void {
    this.length = size;
    const words = Math.ceil(size / 32);
    if (words <= this.bits.length) return;
    const grown = new Uint32Array(Math.max(words, this.bits.length * 2));
    grown.set(this.bits);
    this.bits = grown;
  }

  delete(i: number): void {
    if (i < this.length) this.bits[i >>> 5] = (this.bits[i >>> 5] ?? 0) & ~(1 << (i & 31));
  }

  has(i: number): boolean {
    return ((this.words[i >>> 5] ?? 0) & (1 << (i & 31))) !== 0;
  }

  /** this |= other */
  unionWith(other: Bitset): void {
    if (other.size > this.length) this.grow(other.size);
    const w = this.words;
    const o = other.words;
    for (let i = 0; i < w.length; i++) w[i] = (w[i] ?? 0) | (o[i] ?? 0);
  }

  /** this &= other */
  intersectWith(other: Bitset): void {
    const w = this.words;
    const o = other.words;
    for (let i = 0; i < w.length; i++) w[i] = (w[i] ?? 0) & (o[i] ?? 0);
  }

  /** this &= ~other */
  subtract(other: Bitset): void {
    const w = this.words;
    const o = other.words;
    for (let i = 0; i < w.length; i++) w[i] = (w[i] ?? 0) & ~(o[i] ?? 0);
  }

  clone(): Bitset {
    const copy = new Bitset(this.size);
    copy.words.set(this.words.subarray(0, copy.words.length));
    return copy;
  }

  count(): number {
    let total = 0;
    for (const word of this.words) {
      let v = word - ((word >>> 1) & 0x55555555);
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      total += (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    }
    return total;
  }

  *[Symbol.iterator](): IterableIterator<number> {
    for (let w = 0; w < this.words.length; w++) {
      let word = this.words[w] ?? 0;
      while (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        yield w * 32 + bit;
        word &= word - 1;
      }
    }
  }
}
