import { ApiError } from './errors.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) Reflect.deleteProperty(result, key);
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Strategic merge patch, as far as the emulated resources need it: a merge patch whose
 * `$`-directives are dropped. The lists of these resources that kubectl patches
 * (NetworkPolicy rules, labels, annotations) are replaced whole by a strategic merge as
 * well; pod container lists are immutable anyway.
 */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (!isObject(value)) return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => !k.startsWith('$'))
        .map(([k, v]) => [k, strip(v)]),
    );
  };
  return mergePatch(target, strip(patch));
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw ApiError.badRequest(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface Operation {
  readonly op: string;
  readonly path: string;
  readonly value?: unknown;
}

/** The parent of a JSON pointer's target, and the target's key in it. */
interface Location {
  readonly map: Record<string, unknown>;
  readonly list: unknown[] | undefined;
  readonly key: string;
  readonly index: number;
  readonly exists: boolean;
}

function locate(document: unknown, path: string): Location | undefined {
  const parts = pointer(path);
  const key = parts.pop();
  if (key === undefined) return undefined;
  let parent: unknown = document;
  for (const part of parts) {
    parent = (parent as Record<string, unknown> | undefined)?.[part];
    if (typeof parent !== 'object' || parent === null)
      throw ApiError.badRequest(`path ${path} does not exist`);
  }
  const list = Array.isArray(parent) ? (parent as unknown[]) : undefined;
  const map = parent as Record<string, unknown>;
  const index = key === '-' ? (list?.length ?? -1) : Number(key);
  const exists = list ? index >= 0 && index < list.length : Object.hasOwn(map, key);
  return { map, list, key, index, exists };
}

function write(at: Location, value: unknown, insert: boolean): void {
  if (at.list) at.list.splice(at.index, insert ? 0 : 1, value);
  else at.map[at.key] = value;
}

function applyOperation(document: unknown, operation: Operation): unknown {
  const at = locate(document, operation.path);
  if (!at) return operation.op === 'test' || operation.op === 'remove' ? document : operation.value;
  if ((operation.op === 'replace' || operation.op === 'remove') && !at.exists) {
    throw ApiError.badRequest(`path ${operation.path} does not exist`);
  }
  switch (operation.op) {
    case 'add':
      write(at, operation.value, true);
      break;
    case 'replace':
      write(at, operation.value, false);
      break;
    case 'remove':
      if (at.list) at.list.splice(at.index, 1);
      else Reflect.deleteProperty(at.map, at.key);
      break;
    case 'test': {
      const current = at.list ? at.list[at.index] : at.map[at.key];
      if (JSON.stringify(current) !== JSON.stringify(operation.value)) {
        throw new ApiError(422, 'Invalid', `test operation failed at ${operation.path}`);
      }
      break;
    }
    default:
      throw ApiError.badRequest(`unsupported JSON patch operation "${operation.op}"`);
  }
  return document;
}

/** RFC 6902 JSON patch (add, remove, replace, test). */
export function jsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations))
    throw ApiError.badRequest('a JSON patch must be a list of operations');
  return (operations as Operation[]).reduce(applyOperation, structuredClone(target));
}
