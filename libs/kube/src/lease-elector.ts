import {
  ApiException,
  CoordinationV1Api,
  type KubeConfig,
  type V1Lease,
} from '@kubernetes/client-node';

export interface LeaseElectorOptions {
  readonly namespace: string;
  readonly name: string;
  /** This replica (its pod name). */
  readonly identity: string;
  readonly leaseDurationSeconds: number;
}

/**
 * A Lease's MicroTime as the API server parses it: RFC 3339 with exactly six fractional
 * digits (Go's layout requires them all). client-node passes the value through unchanged.
 */
function microTime(date: Date): Date {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

const status = (error: unknown): number | undefined =>
  error instanceof ApiException ? error.code : undefined;

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: a replica
 * holds the lease while it renews it within its duration; another takes it over only once
 * the holder has let it expire. Writes carry the resourceVersion they read, so two
 * candidates cannot both win.
 */
export class LeaseElector {
  private readonly api: CoordinationV1Api;
  private renewing: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    config: KubeConfig,
    private readonly options: LeaseElectorOptions,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.api = config.makeApiClient(CoordinationV1Api);
  }

  private get retryMs(): number {
    return (this.options.leaseDurationSeconds * 1000) / 3;
  }

  /** Resolves once this replica holds the lease (or rejects when stopped first). */
  async acquire(): Promise<void> {
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew()) return;
      await new Promise((resolve) => setTimeout(resolve, this.retryMs));
    }
    throw new Error('stopped before acquiring the lease');
  }

  /** Renews every third of the duration; calls onLost once a renewal could not happen in time. */
  keepRenewing(onLost: (why: string) => void): void {
    let renewedAt = Date.now();
    this.renewing = setInterval(() => {
      void this.tryAcquireOrRenew()
        .then((held) => {
          if (held) renewedAt = Date.now();
          else {
            this.stopRenewing();
            onLost('another replica holds the lease');
          }
        })
        .catch((error: unknown) => {
          if (Date.now() - renewedAt > this.options.leaseDurationSeconds * 1000) {
            this.stopRenewing();
            onLost(`could not renew the lease: ${String(error)}`);
          }
        });
    }, this.retryMs);
  }

  /** Stops renewing and hands the lease back, so a standby takes over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    this.stopRenewing();
    const lease = await this.read().catch(() => undefined);
    if (lease?.spec?.holderIdentity !== this.options.identity) return;
    await this.api
      .replaceNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
        body: {
          metadata: lease.metadata,
          spec: {
            holderIdentity: '',
            leaseDurationSeconds: 1,
            acquireTime: lease.spec.acquireTime,
            renewTime: lease.spec.renewTime,
            leaseTransitions: lease.spec.leaseTransitions,
          },
        },
      })
      .catch(() => undefined);
  }

  private stopRenewing(): void {
    if (this.renewing) clearInterval(this.renewing);
    this.renewing = undefined;
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
      });
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  /** One round: take a free or expired lease, renew our own; false when another holds it. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity, leaseDurationSeconds } = this.options;
    const clock = this.now();
    const now = microTime(clock);
    const lease = await this.read();
    if (!lease)
      return wonUnlessConflict(
        this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        }),
      );
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired =
      renewed + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 < clock.getTime();
    if (holder !== identity && holder !== '' && !expired) return false;
    const taking = holder !== identity;
    return wonUnlessConflict(
      this.api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: lease.metadata,
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            renewTime: now,
            acquireTime: taking ? now : spec.acquireTime,
            leaseTransitions: (spec.leaseTransitions ?? 0) + (taking ? 1 : 0),
          },
        },
      }),
    );
  }
}

/** A write that another candidate beat (409 Conflict) is a lost round, not an error. */
async function wonUnlessConflict(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (status(error) === 409) return false;
    throw error;
  }
}
