/** How far a run is: cases planned, probed at least once, and judged. */
export interface RunProgress {
  readonly planned: number;
  readonly probed: number;
  readonly judged: number;
}

const WIDTH = 30;

/** One line for a terminal, redrawn in place: a bar of judged cases and the three counts. */
export function progressBar(p: RunProgress, elapsedSeconds: number): string {
  const share = p.planned === 0 ? 0 : Math.min(1, p.judged / p.planned);
  const done = Math.round(share * WIDTH);
  return `\r[${'#'.repeat(done)}${'.'.repeat(WIDTH - done)}] planned ${p.planned} · probed ${p.probed} · judged ${p.judged} · ${Math.round(elapsedSeconds)} s\u001b[K`;
}

/** One line for a log (CI without a terminal): only when something changed. */
export function progressLine(p: RunProgress, elapsedSeconds: number): string {
  return `lumen run: ${Math.round(elapsedSeconds)} s: planned ${p.planned}, probed ${p.probed}, judged ${p.judged}\n`;
}

/**
 * Reports progress every `intervalMs` on stderr: a bar on a terminal, plain lines (only
 * on change) otherwise. Returns a stop function that ends the bar's line.
 */
export function showProgress(
  read: () => RunProgress,
  out: { write: (text: string) => void; isTTY: boolean },
  intervalMs: number,
): () => void {
  const started = Date.now();
  let last = '';
  const tick = (): void => {
    const p = read();
    const key = `${p.planned}/${p.probed}/${p.judged}`;
    const elapsed = (Date.now() - started) / 1000;
    if (out.isTTY) out.write(progressBar(p, elapsed));
    else if (key !== last) out.write(progressLine(p, elapsed));
    last = key;
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  tick();
  return () => {
    clearInterval(timer);
    tick();
    if (out.isTTY) out.write('\n');
  };
}
