import { z } from 'zod';

/** Every subject carries the contract version, so v2 can run beside v1. */
export const SUBJECT_PREFIX = 'lumen.v1';

export const protocol = z.enum(['TCP', 'UDP', 'SCTP']);
export const port = z.number().int().min(1).max(65535);
export const ipAddress = z.union([z.ipv4(), z.ipv6()]);
export const labels = z.record(z.string().max(317), z.string().max(63));
export const name = z.string().min(1).max(253);
export const timestamp = z.iso.datetime();
/** Case ids are stable hashes: 16 lower-case hex digits. */
export const caseId = z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 lower-case hex digits');
/** A case's round: the plan generation whose message started it. */
export const round = z.number().int().min(0);
/** W3C trace context: version-traceid-spanid-flags. */
export const traceparent = z
  .string()
  .regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/, 'must be a W3C traceparent');
export const podRef = z.strictObject({ namespace: name, name, uid: z.string().max(64).optional() });
export const nodeName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a node name');

/** A message type: its subject, its schema and a name for logs and dead letters. */
export interface Contract<T> {
  readonly name: string;
  readonly schema: z.ZodType<T>;
}

export type Decoded<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

function issueText(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map(
      (issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(message)'}: ${issue.message}`,
    )
    .join('; ');
}

/** Parses and validates a message body. Never throws: a bad message is a reason. */
export function decode<T>(contract: Contract<T>, data: Uint8Array | string): Decoded<T> {
  let json: unknown;
  try {
    json = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
  } catch {
    return { ok: false, reason: `${contract.name}: not JSON` };
  }
  const parsed = contract.schema.safeParse(json);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, reason: `${contract.name}: ${issueText(parsed.error)}` };
}

/** Validates before sending too: a service never emits what others must reject. */
export function encode<T>(contract: Contract<T>, value: T): Uint8Array {
  const parsed = contract.schema.safeParse(value);
  if (!parsed.success)
    throw new Error(`refusing to send an invalid ${contract.name}: ${issueText(parsed.error)}`);
  return new TextEncoder().encode(JSON.stringify(parsed.data));
}
