import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { parseSecretYaml } from '#lumen/contracts';

export * from './scope.js';

/** What a token may see: every namespace (undefined), or only these. */
export interface Caller {
  readonly name: string;
  readonly namespaces: readonly string[] | undefined;
}

const tokensFileSchema = z
  .strictObject({
    tokens: z
      .array(
        z.strictObject({
          /** For logs: never the token itself. */
          name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label'),
          token: z.string().min(24, 'must be at least 24 characters').max(512),
          /** Limits the token to cases whose source or destination lies in these namespaces. */
          namespaces: z.array(z.string().min(1).max(63)).min(1).optional(),
        }),
      )
      .max(1000),
  })
  .refine((f) => new Set(f.tokens.map((t) => t.name)).size === f.tokens.length, {
    message: 'token names must be unique',
  })
  .refine((f) => new Set(f.tokens.map((t) => t.token)).size === f.tokens.length, {
    message: 'two entries share one token',
  });

export class TokensError extends Error {}

/**
 * Bearer tokens for the reporter's API. Tokens are compared by their SHA-256 digests in
 * constant time, so neither a token's length nor its prefix shows in response times.
 */
export class ApiTokens {
  private readonly entries: { digest: Buffer; caller: Caller }[];

  constructor(tokens: readonly { name: string; token: string; namespaces?: readonly string[] }[]) {
    this.entries = tokens.map((t) => ({
      digest: digest(t.token),
      caller: { name: t.name, namespaces: t.namespaces ? [...t.namespaces] : undefined },
    }));
  }

  /** Parses a tokens file (YAML or JSON), or explains every problem in it (without the tokens). */
  static parse(text: string, origin: string): ApiTokens {
    const parsed = parseSecretYaml(text);
    if (!parsed.ok) throw new TokensError(`${origin}: ${parsed.reason}`);
    const raw = parsed.value;
    const result = tokensFileSchema.safeParse(raw ?? { tokens: [] });
    if (!result.success)
      throw new TokensError(
        `${origin}: ${result.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`,
      );
    return new ApiTokens(result.data.tokens);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The caller an `Authorization` header names, or undefined. */
  callerOf(authorization: string | undefined): Caller | undefined {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match?.[1]) return undefined;
    const given = digest(match[1]);
    let found: Caller | undefined;
    // Every entry is compared, so the position of a match does not show in the timing.
    for (const entry of this.entries)
      if (timingSafeEqual(entry.digest, given)) found = entry.caller;
    return found;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
export * from './prober-identity.js';
