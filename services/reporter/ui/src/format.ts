import type { Outcome } from '#lumen/contracts';

/** Colours of the verdicts, the same in every view and in the legend. */
export const OUTCOME_COLOUR: Record<Outcome | 'unverified', string> = {
  pass: '#2da44e',
  fail: '#cf222e',
  flaky: '#d4a72c',
  inconclusive: '#8c959f',
  unverified: '#d0d7de',
};

/** What the policies say of a cell: all allowed, all denied, or some of each. */
export const EXPECTED_COLOUR = { allow: '#0969da', deny: '#24292f', mixed: '#8250df' } as const;

export interface Counts {
  readonly allow: number;
  readonly deny: number;
  readonly pass: number;
  readonly fail: number;
  readonly flaky: number;
  readonly inconclusive: number;
  readonly unverified: number;
}

/** A cell's verification state: the worst of its cases (a failure shows first). */
export function worst(counts: Counts): Outcome | 'unverified' {
  if (counts.fail > 0) return 'fail';
  if (counts.flaky > 0) return 'flaky';
  if (counts.unverified > 0) return 'unverified';
  if (counts.inconclusive > 0) return 'inconclusive';
  return 'pass';
}

export function expectedOf(counts: Counts): keyof typeof EXPECTED_COLOUR {
  return counts.deny === 0 ? 'allow' : counts.allow === 0 ? 'deny' : 'mixed';
}

export function labelsText(labels: Readonly<Record<string, string>> | null | undefined): string {
  if (labels === null || labels === undefined) return '(not shown to this token)';
  const text = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(', ');
  return text || '(any pod)';
}

export function countsText(counts: Counts): string {
  const parts = (['pass', 'fail', 'flaky', 'inconclusive', 'unverified'] as const)
    .filter((k) => counts[k] > 0)
    .map((k) => `${counts[k]} ${k}`);
  return `${counts.allow} allowed, ${counts.deny} denied by the policies; ${parts.join(', ')}`;
}

export function when(iso: string | null | undefined): string {
  return iso
    ? new Date(iso)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')
    : '–';
}

export function percent(part: number, whole: number | null): string {
  if (whole === null) return '–';
  return whole === 0 ? '100%' : `${Math.floor((1000 * part) / whole) / 10}%`;
}
