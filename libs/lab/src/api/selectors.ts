import type { KubeObject } from './resources.js';

/** A request the API answers with 400 Bad Request. */
export class BadRequest extends Error {}

type Predicate = (object: KubeObject) => boolean;

interface LabelRequirement {
  readonly key: string;
  readonly test: (present: boolean, value: string | undefined) => boolean;
}

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of text) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (char === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

function setRequirement(key: string, operator: string, list: string): LabelRequirement {
  const values = new Set(list.split(',').map((v) => v.trim()));
  return operator === 'in'
    ? { key, test: (present, value) => present && values.has(value ?? '') }
    : { key, test: (present, value) => !present || !values.has(value ?? '') };
}

function parseRequirement(text: string): LabelRequirement {
  const set = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(text);
  if (set) return setRequirement(set[1] ?? '', set[2] ?? '', set[3] ?? '');
  const equality = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s!=]*)$/.exec(text);
  if (equality) {
    const [, key = '', operator, expected = ''] = equality;
    return operator === '!='
      ? { key, test: (present, value) => !present || value !== expected }
      : { key, test: (present, value) => present && value === expected };
  }
  const exists = /^(!?)([^\s!=(),]+)$/.exec(text);
  if (exists) {
    const negated = exists[1] === '!';
    return { key: exists[2] ?? '', test: (present) => present !== negated };
  }
  throw new BadRequest(`unable to parse requirement: "${text}"`);
}

/** `labelSelector` syntax: `a=b,c!=d,e in (f,g),h notin (i),j,!k`. */
export function parseLabelSelector(text: string | null): Predicate {
  if (!text) return () => true;
  const requirements = splitTopLevel(text).map(parseRequirement);
  return (object) => {
    const labels = object.metadata.labels ?? {};
    return requirements.every((r) => r.test(Object.hasOwn(labels, r.key), labels[r.key]));
  };
}

const FIELD_GETTERS: Record<string, (object: KubeObject) => string | undefined> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace,
  'spec.nodeName': (o) => (o.spec as { nodeName?: string } | undefined)?.nodeName ?? '',
  'status.phase': (o) => (o.status as { phase?: string } | undefined)?.phase ?? '',
};

/** `fieldSelector` for the fields Lumen uses: metadata.name/namespace, spec.nodeName, status.phase. */
export function parseFieldSelector(text: string | null): Predicate {
  if (!text) return () => true;
  const tests = splitTopLevel(text).map((part) => {
    const match = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!match) throw new BadRequest(`invalid field selector: "${part}"`);
    const [, field = '', operator, expected = ''] = match;
    const get = FIELD_GETTERS[field];
    if (!get) throw new BadRequest(`field label not supported: ${field}`);
    return (object: KubeObject): boolean => (get(object) === expected) === (operator !== '!=');
  });
  return (object) => tests.every((test) => test(object));
}
