import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

/** The keys of the Secret that holds the NATS auth callout's issuer (ADR 0016). */
export const CALLOUT_ISSUER_KEYS = { seed: 'seed', issuer: 'issuer' } as const;

/**
 * Makes the Secret holding the auth callout's issuer key, once: a Secret that is there and
 * consistent is kept (every upgrade runs this again; a new key would lock out every prober
 * until the server restarts), and one that is there but inconsistent is an error, never
 * overwritten. Returns the issuer's public key, for the server's configuration.
 */
export async function ensureCalloutIssuerSecret(
  config: KubeConfig,
  options: {
    readonly namespace: string;
    readonly name: string;
    readonly generate: () => { readonly seed: string; readonly issuer: string };
    readonly publicKeyOf: (seed: string) => string;
  },
): Promise<{ readonly created: boolean; readonly issuer: string }> {
  const core = config.makeApiClient(CoreV1Api);
  const named = `${options.namespace}/${options.name}`;
  const existing = await core
    .readNamespacedSecret({ namespace: options.namespace, name: options.name })
    .catch((error: unknown) => {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    });
  if (existing) {
    const read = (key: string): string =>
      Buffer.from(existing.data?.[key] ?? '', 'base64').toString('utf8');
    const seed = read(CALLOUT_ISSUER_KEYS.seed);
    const issuer = read(CALLOUT_ISSUER_KEYS.issuer);
    let derived: string | undefined;
    try {
      derived = options.publicKeyOf(seed);
    } catch {
      derived = undefined;
    }
    if (!derived || derived !== issuer)
      throw new Error(
        `Secret ${named} does not hold a matching issuer seed and key (${CALLOUT_ISSUER_KEYS.seed}, ${CALLOUT_ISSUER_KEYS.issuer}); delete it to make a new one`,
      );
    return { created: false, issuer };
  }
  const made = options.generate();
  await core.createNamespacedSecret({
    namespace: options.namespace,
    body: {
      metadata: {
        name: options.name,
        labels: { 'app.kubernetes.io/managed-by': 'lumen', 'app.kubernetes.io/component': 'nats' },
      },
      type: 'Opaque',
      stringData: {
        [CALLOUT_ISSUER_KEYS.seed]: made.seed,
        [CALLOUT_ISSUER_KEYS.issuer]: made.issuer,
      },
    },
  });
  return { created: true, issuer: made.issuer };
}
