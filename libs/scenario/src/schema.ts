import { z } from 'zod';
import { PROTOCOLS } from '#lumen/policy';

const labels = z.record(z.string(), z.string());
const port = z.number().int().min(1).max(65535);
const protocol = z.enum(PROTOCOLS);
const podRef = z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be "namespace/pod"');
const serviceRef = z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be "namespace/service"');
const ipAddress = z.union([z.ipv4(), z.ipv6()]);
const isV6 = (address: string): boolean => address.includes(':');

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  origin: z.string().optional(),
  tags: z.array(z.string()).default([]),
  namespaces: z
    .array(z.strictObject({ name: z.string().min(1), labels: labels.default({}) }))
    .default([]),
  pods: z.array(
    z
      .strictObject({
        namespace: z.string().min(1).default('default'),
        name: z.string().min(1),
        labels: labels.default({}),
        ip: ipAddress.optional(),
        /** A dual-stack pod's addresses, one of each family (status.podIPs), instead of ip. */
        ips: z
          .array(ipAddress)
          .min(1)
          .max(2)
          .refine((ips) => ips.length < 2 || isV6(ips[0] ?? '') !== isV6(ips[1] ?? ''), {
            message: 'a dual-stack pod has one address of each family',
          })
          .optional(),
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
      })
      .refine((pod) => pod.ip === undefined || pod.ips === undefined, {
        message: 'give ip or ips, not both',
        path: ['ips'],
      }),
  ),
  // Policies are checked by the policy engine, which names the offending field.
  policies: z.array(z.record(z.string(), z.unknown())).default([]),
  // v1 Service manifests, checked by parseService, which names the offending field.
  services: z.array(z.record(z.string(), z.unknown())).default([]),
  expect: z
    .array(
      z
        .strictObject({
          from: podRef,
          /** A pod, reached at its own address. */
          to: podRef.optional(),
          /** A Service, reached at its ClusterIP on `port`. */
          service: serviceRef.optional(),
          port,
          protocol: protocol.default('TCP'),
          allowed: z.boolean(),
          loopback: z.boolean().default(false),
          /** The row holds for this family only; without it, for each family both ends have. */
          family: z.union([z.literal(4), z.literal(6)]).optional(),
        })
        .refine((row) => (row.to === undefined) !== (row.service === undefined), {
          message: 'give to (a pod) or service (a Service), exactly one',
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
