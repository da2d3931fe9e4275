/**
 * Makes the NATS auth callout's issuer key once, in a Secret (ADR 0016). The Helm chart runs
 * it as a pre-install and pre-upgrade hook Job: the bundled NATS server trusts the key's
 * public half, the scheduler signs the probers' per-node users with its seed. Helm cannot
 * make an Ed25519 nkey itself.
 */
import { z } from 'zod';
import { ensureCalloutIssuerSecret, loadKubeConfig } from '#lumen/kube';
import { AuthCalloutResponder, newCalloutIssuer } from '#lumen/messaging';
import { loadConfig } from '#lumen/service';

const schema = z.object({
  CALLOUT_SECRET_NAME: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a Secret name'),
  POD_NAMESPACE: z.string().min(1).max(63),
  KUBECONFIG: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

try {
  const config = loadConfig('issuer-key', schema);
  const { created, issuer } = await ensureCalloutIssuerSecret(loadKubeConfig(config.KUBECONFIG), {
    namespace: config.POD_NAMESPACE,
    name: config.CALLOUT_SECRET_NAME,
    generate: newCalloutIssuer,
    publicKeyOf: (seed) => AuthCalloutResponder.issuerPublicKey(seed),
  });
  process.stdout.write(
    `${created ? 'made' : 'kept'} the NATS auth callout issuer ${issuer} in Secret ${config.POD_NAMESPACE}/${config.CALLOUT_SECRET_NAME}\n`,
  );
} catch (error) {
  process.stderr.write(`issuer-key: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
