import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { SIGNATURE_HEADER, verifySignature } from '#lumen/alerting';
import { freePort } from '#lumen/host';

/** A CloudEvent as Lumen's webhook receiver type sends it (the fields the demo shows). */
export interface ReceivedAlert {
  readonly receivedAt: number;
  readonly signatureValid: boolean;
  readonly event: {
    readonly subject: string;
    readonly data: {
      readonly alerts: readonly {
        readonly fingerprint: string;
        readonly status: string;
        readonly summary: string;
        readonly traceId: string | null;
        readonly evidence: string;
      }[];
    };
  };
}

/**
 * A local HTTP endpoint for the demo's webhook receiver: it checks each request's
 * signature as a real receiver would (docs/alerts.md#signing) and keeps what arrived.
 */
export class LocalWebhookReceiver {
  readonly secret = randomBytes(24).toString('base64url');
  readonly received: ReceivedAlert[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<LocalWebhookReceiver> {
    const port = await freePort();
    const holder: { receiver?: LocalWebhookReceiver } = {};
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const receiver = holder.receiver;
        try {
          receiver?.received.push({
            receivedAt: Date.now(),
            signatureValid: verifySignature(
              receiver.secret,
              body,
              String(request.headers[SIGNATURE_HEADER] ?? ''),
              new Date(),
            ),
            event: JSON.parse(body) as ReceivedAlert['event'],
          });
          response.writeHead(202).end();
        } catch {
          response.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    holder.receiver = new LocalWebhookReceiver(server, `http://127.0.0.1:${port}/lumen`);
    return holder.receiver;
  }

  /** The receivers file that points the reporter here. */
  receiversFile(): string {
    return `receivers:\n  - name: demo-webhook\n    type: webhook\n    url: ${this.url}\n    secret: ${this.secret}\n`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
