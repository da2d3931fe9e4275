import type { KubeObject } from './resources.js';

/** Server-side printing (`Accept: …;as=Table`), so `kubectl get` shows real columns. */
interface Column {
  readonly name: string;
  readonly priority?: number;
  readonly cell: (object: KubeObject, now: Date) => string | number;
}

export function age(created: string | undefined, now: Date): string {
  if (!created) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now.getTime() - Date.parse(created)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

function field(object: KubeObject, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], object);
}

function text(object: KubeObject, path: string): string | undefined {
  const value = field(object, path);
  return typeof value === 'string' ? value : undefined;
}

const name: Column = { name: 'Name', cell: (o) => o.metadata.name };
const ageColumn: Column = { name: 'Age', cell: (o, now) => age(o.metadata.creationTimestamp, now) };

function selectorText(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | undefined,
): string {
  const labels = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  const expressions = (selector?.matchExpressions ?? []).length;
  const text = [...labels, ...(expressions ? [`+${expressions} expression(s)`] : [])].join(',');
  return text || '<none>';
}

const COLUMNS: Record<string, readonly Column[]> = {
  Pod: [
    name,
    {
      name: 'Ready',
      cell: (o) => (text(o, 'status.phase') === 'Running' ? '1/1' : '0/1'),
    },
    { name: 'Status', cell: (o) => text(o, 'status.phase') ?? 'Pending' },
    { name: 'Restarts', cell: () => 0 },
    ageColumn,
    { name: 'IP', priority: 1, cell: (o) => text(o, 'status.podIP') ?? '<none>' },
    { name: 'Node', priority: 1, cell: (o) => text(o, 'spec.nodeName') ?? '<none>' },
  ],
  NetworkPolicy: [
    name,
    {
      name: 'Pod-Selector',
      cell: (o) => selectorText(field(o, 'spec.podSelector') as Parameters<typeof selectorText>[0]),
    },
    ageColumn,
  ],
  Namespace: [
    name,
    { name: 'Status', cell: (o) => text(o, 'status.phase') ?? 'Active' },
    ageColumn,
  ],
  Node: [
    name,
    { name: 'Status', cell: () => 'Ready' },
    { name: 'Roles', cell: () => '<none>' },
    ageColumn,
    { name: 'Version', cell: () => 'lumen-lab' },
  ],
};

export function wantsTable(accept: string | undefined): boolean {
  return accept?.includes('as=Table') ?? false;
}

export function toTable(
  kind: string,
  objects: readonly KubeObject[],
  resourceVersion: string,
  withColumns: boolean,
  now: Date,
): Record<string, unknown> {
  const columns = COLUMNS[kind] ?? [name, ageColumn];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: withColumns
      ? columns.map((c) => ({
          name: c.name,
          type: c.name === 'Restarts' ? 'integer' : 'string',
          format: c.name === 'Name' ? 'name' : '',
          description: '',
          priority: c.priority ?? 0,
        }))
      : [],
    rows: objects.map((o) => ({
      cells: columns.map((c) => c.cell(o, now)),
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
