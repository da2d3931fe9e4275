import { z } from 'zod';
import { parseSecretYaml } from '#lumen/contracts';
import type { Severity } from './alert.js';

const common = {
  /** Names a receiver in logs, metrics and the outbox: keep it stable. */
  name: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label (a-z, 0-9, -)'),
  url: z.url({ protocol: /^https?$/ }),
  /** Only alerts whose source, destination or policy lies in one of these namespaces. */
  namespaces: z.array(z.string().min(1).max(63)).min(1).optional(),
  /** Only alerts of these severities (default: both). */
  severities: z
    .array(z.enum(['critical', 'warning']))
    .min(1)
    .optional(),
};

export const receiverSchema = z.discriminatedUnion('type', [
  z.strictObject({
    ...common,
    type: z.literal('webhook'),
    /** HMAC-SHA256 key for the Lumen-Signature header. */
    secret: z.string().min(16, 'must be at least 16 characters'),
  }),
  z.strictObject({ ...common, type: z.literal('slack') }),
  /** The Alertmanager base URL: alerts go to `<url>/api/v2/alerts`. */
  z.strictObject({ ...common, type: z.literal('alertmanager') }),
  z.strictObject({ ...common, type: z.literal('teams') }),
]);

export type Receiver = z.infer<typeof receiverSchema>;

const receiversFileSchema = z
  .strictObject({ receivers: z.array(receiverSchema).max(50) })
  .refine((f) => new Set(f.receivers.map((r) => r.name)).size === f.receivers.length, {
    message: 'receiver names must be unique',
  });

/** Thrown with every problem of a receivers file, each with its path. */
export class ReceiversError extends Error {}

/** Parses a receivers file (YAML or JSON), or explains every problem in it. */
export function parseReceivers(text: string, origin: string): Receiver[] {
  const parsed = parseSecretYaml(text);
  if (!parsed.ok) throw new ReceiversError(`${origin}: ${parsed.reason}`);
  const raw = parsed.value;
  const result = receiversFileSchema.safeParse(raw ?? { receivers: [] });
  if (!result.success)
    throw new ReceiversError(
      `${origin}: ${result.error.issues
        .map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`)
        .join('; ')}`,
    );
  return result.data.receivers;
}

/** Whether a receiver wants an alert: its namespace filter and its severity filter. */
export function receiverWants(
  receiver: Receiver,
  alert: { readonly namespaces: readonly string[]; readonly severity: Severity },
): boolean {
  if (receiver.severities && !receiver.severities.includes(alert.severity)) return false;
  const wanted = receiver.namespaces;
  return !wanted || alert.namespaces.some((n) => wanted.includes(n));
}

/** A receiver's URL with any credentials or query hidden, for logs and errors. */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? '/…' : '/'}`;
}
