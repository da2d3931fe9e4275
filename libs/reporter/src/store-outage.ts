import type { Clock, Log } from '#lumen/contracts';

export interface StoreOutageSettings {
  /** The first wait before the work is tried again; it doubles up to maxRetryMs. */
  readonly firstRetryMs: number;
  readonly maxRetryMs: number;
}

export const STORE_OUTAGE_DEFAULTS: StoreOutageSettings = { firstRetryMs: 250, maxRetryMs: 5000 };

/**
 * Holds the reporter's work while its store cannot be reached (ADR 0017). A message whose
 * handling failed because the database is down is not wrong: handed back to JetStream it
 * would be delivered again a few times and then dead-lettered, and its verdict lost with
 * it. Instead its handler waits here, the message held unacked (the bus tells the server it
 * is still being worked on), and tries the same work again until the database answers;
 * consumption stalls at the consumers' concurrency meanwhile. Nothing is acked before it is
 * stored, and readiness says why the reporter is not ready.
 */
export class StoreOutageGuard {
  private since: Date | undefined;
  private stopped = false;
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly ports: {
      readonly clock: Clock;
      readonly log: Log;
      /** Tells an outage from a failure of the work itself (isStoreUnreachable in libs/store). */
      readonly unreachable: (error: unknown) => boolean;
    },
    private readonly settings: StoreOutageSettings = STORE_OUTAGE_DEFAULTS,
  ) {}

  /** Why the reporter is not ready, while the store is unreachable. */
  notReady(): string | undefined {
    return this.since
      ? `the store is unreachable since ${this.since.toISOString()}; messages wait unacked`
      : undefined;
  }

  /** Runs the work, and runs it again after each outage error until it succeeds or stop(). */
  async run<T>(work: () => Promise<T>): Promise<T> {
    for (let retry = 0; ; retry += 1) {
      try {
        const value = await work();
        this.recovered();
        return value;
      } catch (error) {
        if (this.stopped || !this.ports.unreachable(error)) throw error;
        this.down(error);
        await this.wait(
          Math.min(this.settings.maxRetryMs, this.settings.firstRetryMs * 2 ** retry),
        );
      }
    }
  }

  /** Ends every wait: the work still failing goes back to its caller (unacked, on shutdown). */
  stop(): void {
    this.stopped = true;
    for (const wake of this.wakers) wake();
  }

  private down(error: unknown): void {
    if (this.since) return;
    this.since = this.ports.clock.now();
    this.ports.log.warn('store unreachable: holding messages unacked until it answers', {
      error: String(error),
    });
  }

  private recovered(): void {
    if (!this.since) return;
    const outageMs = this.ports.clock.now().getTime() - this.since.getTime();
    this.since = undefined;
    this.ports.log.info('store reachable again', { outageMs });
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }
}
