/** A token bucket per node: at most `perSecond` batches, bursts up to `burst`. The clock is injected. */
export class NodeRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    if (perSecond <= 0 || burst < 1)
      throw new Error('a rate limit needs perSecond > 0 and burst >= 1');
  }

  /** 0 when a batch may go to `node` now (and takes the token); else how many ms to wait. */
  take(node: string): number {
    const now = this.now();
    const bucket = this.buckets.get(node) ?? { tokens: this.burst, at: now };
    const tokens = Math.min(
      this.burst,
      bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond,
    );
    if (tokens >= 1) {
      this.buckets.set(node, { tokens: tokens - 1, at: now });
      return 0;
    }
    this.buckets.set(node, { tokens, at: now });
    return Math.ceil(((1 - tokens) / this.perSecond) * 1000);
  }
}
