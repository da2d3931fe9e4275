/**
 * The emulator's reading of Kubernetes protobuf bodies (what client-go's typed client, and
 * so Helm's release storage, sends): Secrets and ConfigMaps decoded with their metadata,
 * any other kind refused with 415, a broken body with 400. The bodies are encoded here by
 * the protobuf wire rules, field by field, as generated.proto numbers them.
 */
import { describe, expect, it } from '@jest/globals';
import { ApiError } from '../src/api/errors.js';
import { decodeProtobuf } from '../src/api/protobuf.js';

const varint = (n: number): Buffer => {
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.push((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>>= 7;
  } while (v > 0);
  return Buffer.from(bytes);
};
const bytesField = (number: number, value: Buffer | string): Buffer => {
  const data = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([varint((number << 3) | 2), varint(data.length), data]);
};
const varintField = (number: number, value: number): Buffer =>
  Buffer.concat([varint(number << 3), varint(value)]);
const mapEntries = (number: number, entries: Record<string, string | Buffer>): Buffer =>
  Buffer.concat(
    Object.entries(entries).map(([k, v]) =>
      bytesField(number, Buffer.concat([bytesField(1, k), bytesField(2, v)])),
    ),
  );
const envelope = (apiVersion: string, kind: string, raw: Buffer): Buffer =>
  Buffer.concat([
    Buffer.from([0x6b, 0x38, 0x73, 0x00]),
    bytesField(1, Buffer.concat([bytesField(1, apiVersion), bytesField(2, kind)])),
    bytesField(2, raw),
  ]);
const meta = Buffer.concat([
  bytesField(1, 'sh.helm.release.v1.lumen.v1'),
  bytesField(3, 'lumen'),
  mapEntries(11, { owner: 'helm', status: 'deployed' }),
]);

describe('decodeProtobuf', () => {
  it('reads a Secret as Helm stores a release in one', () => {
    const release = Buffer.from([0x1f, 0x8b, 0x00, 0xff]);
    const body = envelope(
      'v1',
      'Secret',
      Buffer.concat([
        bytesField(1, meta),
        mapEntries(2, { release }),
        bytesField(3, 'helm.sh/release.v1'),
        varintField(5, 1),
      ]),
    );
    expect(decodeProtobuf(body)).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'sh.helm.release.v1.lumen.v1',
        namespace: 'lumen',
        labels: { owner: 'helm', status: 'deployed' },
      },
      data: { release: release.toString('base64') },
      type: 'helm.sh/release.v1',
      immutable: true,
    });
  });

  it('reads a ConfigMap', () => {
    const body = envelope(
      'v1',
      'ConfigMap',
      Buffer.concat([bytesField(1, meta), mapEntries(2, { 'nats.conf': 'port: 4222' })]),
    );
    expect(decodeProtobuf(body)).toMatchObject({
      kind: 'ConfigMap',
      metadata: { name: 'sh.helm.release.v1.lumen.v1' },
      data: { 'nats.conf': 'port: 4222' },
    });
  });

  it.each([
    [
      'another kind',
      envelope('apps/v1', 'Deployment', bytesField(1, meta)),
      415,
      'not apps/v1 Deployment',
    ],
    ['no envelope', Buffer.from('{"kind":"Secret"}'), 400, 'lacks the k8s envelope'],
    [
      'a field cut short',
      Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), Buffer.from([0x0a, 0x20, 0x01])]),
      400,
      'ends inside a field',
    ],
  ])('refuses %s, saying why', (_what, body, code, message) => {
    let error: unknown;
    try {
      decodeProtobuf(body);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect({ code: (error as ApiError).code, message: (error as ApiError).message }).toEqual({
      code,
      message: expect.stringContaining(message) as unknown as string,
    });
  });
});
