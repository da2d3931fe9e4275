import { z } from 'zod';
import { PROTOCOLS } from '#lumen/policy';

const labels = z.record(z.string(), z.string());
const port = z.number().int().min(1).max(65535);
const protocol = z.enum(PROTOCOLS);
const podRef = z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be "namespace/pod"');

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  origin: z.string().optional(),
  tags: z.array(z.string()).default([]),
  namespaces: z
    .array(z.strictObject({ name: z.string().min(1), labels: labels.default({}) }))
    .default([]),
  pods: z.array(
    z.strictObject({
      namespace: z.string().min(1).default('default'),
      name: z.string().min(1),
      labels: labels.default({}),
      ip: z.union([z.ipv4(), z.ipv6()]).optional(),
      hostNetwork: z.boolean().default(false),
      ports: z
        .array(
          z.strictObject({
            name: z.string().min(1).max(15).optional(),
            containerPort: port,
            protocol: protocol.default('TCP'),
          }),
        )
        .default([]),
    }),
  ),
  // Policies are checked by the policy engine, which names the offending field.
  policies: z.array(z.record(z.string(), z.unknown())).default([]),
  expect: z
    .array(
      z.strictObject({
        from: podRef,
        to: podRef,
        port,
        protocol: protocol.default('TCP'),
        allowed: z.boolean(),
        loopback: z.boolean().default(false),
      }),
    )
    .default([]),
});

export type ScenarioDocument = z.infer<typeof scenarioSchema>;

/** `a.b[2].c` from a zod issue path. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) =>
      typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
}
