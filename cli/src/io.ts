/** Where a command writes; tests pass their own. */
export interface CommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** stderr is a terminal: progress is drawn as a bar rather than logged in lines. */
  readonly stderrIsTTY?: boolean;
}

export const processIo: CommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stderrIsTTY: process.stderr.isTTY,
};

/** Exit codes shared by every command. */
export const ExitCode = {
  ok: 0,
  /** The cluster does not do what was expected (a disagreement, a failed case). */
  mismatch: 1,
  /** Invalid input or usage, or an error that stopped the command. */
  error: 2,
} as const;

export class UsageError extends Error {}

/** Display width in terminal columns; the tables hold ASCII plus ✓, ✗ and → only. */
function displayWidth(text: string): number {
  return Array.from(text).length;
}

/** Renders rows as a left-aligned text table. */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) =>
    Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) =>
        i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - displayWidth(c)),
      )
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
