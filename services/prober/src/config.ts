import { z } from 'zod';
import { parseCidr, type Cidr } from '#lumen/policy';
import { commonConfig } from '#lumen/runtime';

const cidrList = z
  .string()
  .min(1, 'give at least one CIDR')
  .transform((text, ctx) =>
    text.split(',').map((part) => {
      const cidr = parseCidr(part.trim());
      if (!cidr) ctx.addIssue({ code: 'custom', message: `"${part.trim()}" is not a CIDR` });
      return cidr as Cidr;
    }),
  );

const portRanges = z
  .string()
  .default('1-65535')
  .transform((text, ctx) =>
    text.split(',').map((part) => {
      const [from = '', to = from] = part.trim().split('-');
      const range = { from: Number(from), to: Number(to) };
      if (
        !Number.isInteger(range.from) ||
        !Number.isInteger(range.to) ||
        range.from < 1 ||
        range.to > 65535 ||
        range.from > range.to
      ) {
        ctx.addIssue({
          code: 'custom',
          message: `"${part.trim()}" is not a port or port range (1-65535)`,
        });
      }
      return range;
    }),
  );

/** The prober's environment, validated once at boot. */
export const proberConfigSchema = z.object({
  NODE_NAME: z
    .string()
    .regex(
      /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/,
      'must be the node name (downward API spec.nodeName)',
    ),
  ...commonConfig,
  POD_CIDRS: cidrList,
  PROBE_PORTS: portRanges,
  PROBE_PROTOCOLS: z
    .string()
    .default('TCP,UDP,SCTP')
    .transform((t) => t.split(',').map((p) => p.trim().toUpperCase()))
    .pipe(z.array(z.enum(['TCP', 'UDP', 'SCTP'])).min(1)),
  TCP_SCAN: z.enum(['syn', 'connect']).default('syn'),
  NMAP_MAX_RTT_MS: z.coerce.number().int().min(50).max(10_000).default(300),
  NMAP_HOST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(60_000),
  /** A prober silent this long counts as gone; it beats three times as often. */
  HEARTBEAT_TTL_MS: z.coerce.number().int().min(1500).max(300_000).default(15_000),
  HTTP_PORT: z.coerce.number().int().min(1).max(65535).default(8083),
});

export type ProberConfig = z.infer<typeof proberConfigSchema>;
export const PROBER_CONFIG = Symbol('PROBER_CONFIG');
