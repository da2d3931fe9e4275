import type { LabelSelector, Labels } from './types.js';

/** A label selector compiled into a predicate, with a canonical text used as a cache key. */
export interface CompiledSelector {
  readonly key: string;
  readonly matches: (labels: Labels) => boolean;
}

type Test = (labels: Labels) => boolean;

function requirementTest(key: string, operator: string, values: readonly string[]): Test {
  const set = new Set(values);
  switch (operator) {
    case 'In':
      return (labels) => Object.hasOwn(labels, key) && set.has(labels[key] ?? '');
    case 'NotIn':
      // A pod without the key is "not in" any set: upstream semantics.
      return (labels) => !Object.hasOwn(labels, key) || !set.has(labels[key] ?? '');
    case 'Exists':
      return (labels) => Object.hasOwn(labels, key);
    case 'DoesNotExist':
      return (labels) => !Object.hasOwn(labels, key);
    default:
      throw new Error(`unknown selector operator ${operator}`);
  }
}

/** Canonical text of a selector: equal for selectors that select the same sets. */
export function selectorKey(selector: LabelSelector): string {
  const labels = Object.entries(selector.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const expressions = (selector.matchExpressions ?? [])
    .map((e) => `${e.key} ${e.operator} (${[...(e.values ?? [])].sort().join(',')})`)
    .sort();
  return [...new Set([...labels, ...expressions])].join(';');
}

/** Compiles a validated selector. The empty selector matches every label set. */
export function compileSelector(selector: LabelSelector): CompiledSelector {
  const tests: Test[] = Object.entries(selector.matchLabels ?? {}).map(
    ([key, value]) =>
      (labels: Labels): boolean =>
        labels[key] === value && Object.hasOwn(labels, key),
  );
  for (const e of selector.matchExpressions ?? []) {
    tests.push(requirementTest(e.key, e.operator, e.values ?? []));
  }
  const matches: Test =
    tests.length === 0 ? () => true : (labels) => tests.every((test) => test(labels));
  return { key: selectorKey(selector), matches };
}

/** Renders labels the way kubectl does: `a=1,b=2`, sorted by key. */
export function formatLabels(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join(',');
}
