/** The lab kubelet's container environment: values, fields, Secret keys and $(VAR) references. */
import { describe, expect, it } from '@jest/globals';
import { resolveEnv } from '../src/runtime/lumen-image.js';

const pod = { nodeName: 'node-a', namespace: 'lumen', name: 'lumen-nats-0' };
const secrets: Record<string, Record<string, string>> = {
  users: { pw: 'abc1e5', user: 'planner' },
};
const lookup = (_namespace: string, name: string) => secrets[name];

describe('resolveEnv', () => {
  it.each([
    ['a plain value', [{ name: 'A', value: 'x' }], { A: 'x' }],
    [
      'the pod’s fields',
      [
        { name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      ],
      { N: 'lumen-nats-0', NODE: 'node-a' },
    ],
    [
      'a Secret’s key, quoted through a reference',
      [
        { name: 'PW_VALUE', valueFrom: { secretKeyRef: { name: 'users', key: 'pw' } } },
        { name: 'PW', value: '"$(PW_VALUE)"' },
      ],
      { PW_VALUE: 'abc1e5', PW: '"abc1e5"' },
    ],
    [
      'references to earlier variables only; $$ escapes',
      [
        { name: 'B', value: '$(A)-$$(A)-$(LATER)' },
        { name: 'A', value: 'x' },
        { name: 'C', value: 'nats://route:$(A)@host' },
      ],
      { B: '$(A)-$(A)-$(LATER)', A: 'x', C: 'nats://route:x@host' },
    ],
  ])('resolves %s', (_what, env, expected) => {
    expect(resolveEnv(env, pod, lookup)).toEqual(expected);
  });

  it.each([
    [{ name: 'users', key: 'nope' }, "couldn't find key nope in Secret lumen/users"],
    [{ name: 'missing', key: 'pw' }, 'secret "missing" not found in namespace lumen'],
  ])(
    'refuses a container whose Secret or key is missing (%j), as the kubelet does',
    (ref, message) => {
      expect(() =>
        resolveEnv([{ name: 'X', valueFrom: { secretKeyRef: ref } }], pod, lookup),
      ).toThrow(message);
    },
  );
});
