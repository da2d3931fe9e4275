import { request } from 'node:https';
import type { LabState } from './state.js';

export class LabApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    what: string,
  ) {
    super(
      `${what}: ${status} ${typeof body.message === 'string' ? body.message : typeof body.error === 'string' ? body.error : JSON.stringify(body)}`,
    );
    this.name = 'LabApiError';
  }
}

/** A small HTTPS JSON client for the lab's API, trusting the lab's own certificate. */
export class LabClient {
  constructor(private readonly state: Pick<LabState, 'apiServer' | 'token' | 'caCertificate'>) {}

  send<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.state.apiServer}${path}`,
        {
          method,
          ca: this.state.caCertificate,
          // A connection per request: Node's agent keeps connections alive, and a request
          // sent on one the busy daemon is closing (its keep-alive timer fired late, while
          // the enforcer computed 500 pods' rules) fails with ECONNRESET.
          agent: false,
          headers: {
            authorization: `Bearer ${this.state.token}`,
            accept: 'application/json',
            ...(payload === undefined
              ? {}
              : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
          },
          timeout: 30_000,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let parsed: Record<string, unknown>;
            try {
              parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
            } catch {
              parsed = { message: text };
            }
            if ((response.statusCode ?? 500) >= 400)
              reject(new LabApiError(response.statusCode ?? 500, parsed, `${method} ${path}`));
            else resolve(parsed as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}
