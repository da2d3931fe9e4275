import { describe, expect, it } from '@jest/globals';
import { DenyBehaviour, type ObservedProbe } from '#lumen/reporter';

const probe = (
  reachability: ObservedProbe['reachability'],
  state: string | undefined,
): ObservedProbe => ({
  reachability,
  basis: `nmap said ${state ?? 'nothing'}`,
  evidence: state ? { state } : null,
});

const learned = (...seen: [boolean, ObservedProbe][]): DenyBehaviour => {
  const behaviour = new DenyBehaviour();
  for (const [listenerKnown, p] of seen) behaviour.learn(listenerKnown, p);
  return behaviour;
};

describe('DenyBehaviour', () => {
  it.each<[string, [boolean, ObservedProbe][], 'drop' | 'reject' | 'unknown']>([
    ['nothing seen', [], 'unknown'],
    [
      'a blocked probe to a listener that was dropped',
      [[true, probe('blocked', 'filtered')]],
      'drop',
    ],
    ['a silent UDP listener', [[true, probe('blocked', 'open|filtered')]], 'drop'],
    [
      'a blocked probe to a listener that was reset',
      [[true, probe('blocked', 'closed')]],
      'reject',
    ],
    [
      'one reject among drops',
      [
        [true, probe('blocked', 'filtered')],
        [true, probe('blocked', 'closed')],
      ],
      'reject',
    ],
    [
      'a reset where nothing listens (tells nothing)',
      [[false, probe('reachable', 'closed')]],
      'unknown',
    ],
    ['an open listener (nothing was denied)', [[true, probe('reachable', 'open')]], 'unknown'],
  ])('after %s the CNI is thought to %s', (_what, seen, style) => {
    expect(learned(...seen).style).toBe(style);
  });

  const noListenerReset = probe('reachable', 'closed');

  it.each<
    [string, 'drop' | 'reject' | 'unknown', 'allow' | 'deny', ObservedProbe['reachability'], string]
  >([
    ['rejects', 'reject', 'deny', 'inconclusive', 'cannot tell a reject from a closed port'],
    ['rejects', 'reject', 'allow', 'inconclusive', 'cannot tell a reject from a closed port'],
    ['drops', 'drop', 'deny', 'reachable', 'nmap said closed'],
    ['has not shown it yet', 'unknown', 'deny', 'inconclusive', 'not known yet'],
    ['has not shown it yet', 'unknown', 'allow', 'reachable', 'nmap said closed'],
  ])(
    'reads a reset from a port with no listener, where the CNI %s and the case expects %s, as %s',
    (_what, style, expected, reachability, basis) => {
      const behaviour =
        style === 'reject'
          ? learned([true, probe('blocked', 'closed')])
          : style === 'drop'
            ? learned([true, probe('blocked', 'filtered')])
            : new DenyBehaviour();
      const read = behaviour.interpret(noListenerReset, { listenerKnown: false, expected });
      expect(read.reachability).toBe(reachability);
      expect(read.basis).toContain(basis);
    },
  );

  it('leaves every other probe as it was', () => {
    const rejecting = learned([true, probe('blocked', 'closed')]);
    for (const p of [probe('blocked', 'filtered'), probe('reachable', 'open')])
      expect(rejecting.interpret(p, { listenerKnown: false, expected: 'deny' })).toBe(p);
    const atListener = probe('blocked', 'closed');
    expect(rejecting.interpret(atListener, { listenerKnown: true, expected: 'deny' })).toBe(
      atListener,
    );
  });
});
