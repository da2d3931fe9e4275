/**
 * Work on one case takes turns; work on different cases runs side by side. The reporter
 * judges many results at once, and a case's attempts must still be stored and decided one
 * after the other (a decision reads every attempt of the round).
 */
export class CaseTurns {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(caseId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(caseId) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(caseId, tail);
    void tail.then(() => {
      // The last in line cleans up, so the map holds only cases with work in flight.
      if (this.tails.get(caseId) === tail) this.tails.delete(caseId);
    });
    return result;
  }

  /** Cases with work queued or running (for tests). */
  get busy(): number {
    return this.tails.size;
  }
}

/** Runs `work` over `items`, at most `limit` at once; rejects with the first failure, after all ran. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item).catch((error: unknown) => failures.push(error));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failures.length > 0) throw failures[0];
}
