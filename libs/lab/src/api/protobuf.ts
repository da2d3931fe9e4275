import { ApiError } from './errors.js';
import type { KubeObject } from './resources.js';

/**
 * Kubernetes' protobuf encoding, read as far as a client sends it to the lab: Helm keeps its
 * releases in Secrets through client-go's typed client, which writes protobuf. The body is
 * the `k8s\0` envelope around a runtime.Unknown (type meta and the object's bytes); the lab
 * decodes Secrets and ConfigMaps with their ObjectMeta, and refuses any other kind with 415.
 * It answers in JSON, which the client reads by the response's Content-Type.
 */
export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

interface Field {
  readonly number: number;
  readonly varint?: bigint;
  readonly bytes?: Buffer;
}

function varint(buffer: Buffer, offset: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  for (let i = offset; i < buffer.length; i++) {
    const byte = buffer[i] ?? 0;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value, i + 1];
    shift += 7n;
    if (shift > 63n) break;
  }
  throw ApiError.badRequest('the protobuf body ends inside a varint');
}

/** The fields of one message, in order; groups and fixed-width fields are skipped. */
function fields(buffer: Buffer): Field[] {
  const out: Field[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const [key, next] = varint(buffer, offset);
    offset = next;
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, after] = varint(buffer, offset);
      out.push({ number, varint: value });
      offset = after;
    } else if (wire === 2) {
      const [length, after] = varint(buffer, offset);
      const end = after + Number(length);
      if (end > buffer.length) throw ApiError.badRequest('the protobuf body ends inside a field');
      out.push({ number, bytes: buffer.subarray(after, end) });
      offset = end;
    } else if (wire === 1) offset += 8;
    else if (wire === 5) offset += 4;
    else throw ApiError.badRequest(`the protobuf body has a field of wire type ${wire}`);
  }
  return out;
}

const text = (field: Field | undefined): string | undefined => field?.bytes?.toString('utf8');

function map(all: readonly Field[], number: number): Record<string, Buffer> {
  const entries: [string, Buffer][] = all
    .filter((f) => f.number === number && f.bytes)
    .map((f) => {
      const entry = fields(f.bytes ?? Buffer.alloc(0));
      return [
        text(entry.find((e) => e.number === 1)) ?? '',
        entry.find((e) => e.number === 2)?.bytes ?? Buffer.alloc(0),
      ];
    });
  return Object.fromEntries(entries);
}

const strings = (entries: Record<string, Buffer>): Record<string, string> =>
  Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, v.toString('utf8')]));

function objectMeta(buffer: Buffer): KubeObject['metadata'] {
  const all = fields(buffer);
  const one = (n: number) => text(all.find((f) => f.number === n));
  const labels = strings(map(all, 11));
  const annotations = strings(map(all, 12));
  const meta: Record<string, unknown> = {
    name: one(1) ?? '',
    ...(one(2) ? { generateName: one(2) } : {}),
    ...(one(3) ? { namespace: one(3) } : {}),
    ...(one(6) ? { resourceVersion: one(6) } : {}),
    ...(Object.keys(labels).length ? { labels } : {}),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
  return meta as KubeObject['metadata'];
}

const base64 = (entries: Record<string, Buffer>): Record<string, string> =>
  Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, v.toString('base64')]));

/** A v1.Secret's fields: data (base64, as JSON has it), type, stringData, immutable. */
function secret(raw: readonly Field[]): Record<string, unknown> {
  const type = text(raw.find((f) => f.number === 3));
  const stringData = strings(map(raw, 4));
  const immutable = raw.find((f) => f.number === 5);
  return {
    data: base64(map(raw, 2)),
    ...(type ? { type } : {}),
    ...(Object.keys(stringData).length ? { stringData } : {}),
    ...(immutable ? { immutable: immutable.varint === 1n } : {}),
  };
}

/** A v1.ConfigMap's fields: data, and binaryData in base64. */
function configMap(raw: readonly Field[]): Record<string, unknown> {
  const binary = map(raw, 3);
  return {
    data: strings(map(raw, 2)),
    ...(Object.keys(binary).length ? { binaryData: base64(binary) } : {}),
  };
}

/** A protobuf request body as the JSON object it stands for. */
export function decodeProtobuf(body: Buffer): KubeObject {
  if (!body.subarray(0, 4).equals(MAGIC))
    throw ApiError.badRequest('the protobuf body lacks the k8s envelope');
  const unknown = fields(body.subarray(4));
  const typeMeta = fields(unknown.find((f) => f.number === 1)?.bytes ?? Buffer.alloc(0));
  const apiVersion = text(typeMeta.find((f) => f.number === 1)) ?? '';
  const kind = text(typeMeta.find((f) => f.number === 2)) ?? '';
  const raw = fields(unknown.find((f) => f.number === 2)?.bytes ?? Buffer.alloc(0));
  const metadata = objectMeta(raw.find((f) => f.number === 1)?.bytes ?? Buffer.alloc(0));
  if (apiVersion === 'v1' && kind === 'Secret')
    return { apiVersion, kind, metadata, ...secret(raw) };
  if (apiVersion === 'v1' && kind === 'ConfigMap')
    return { apiVersion, kind, metadata, ...configMap(raw) };
  throw new ApiError(
    415,
    'UnsupportedMediaType',
    `the lab reads protobuf for v1 Secrets and ConfigMaps only, not ${apiVersion} ${kind}: send JSON`,
  );
}
