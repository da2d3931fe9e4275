/**
 * Work on one case takes turns; work on different cases runs side by side. The reporter
 * judges many results at once, and a case's attempts must still be stored and decided one
 * after the other (a decision reads every attempt of the round).
 */
export class CaseTurns {
  private readonly tails = new Map<string, Promise<unknown>>();

  /**
   * Work on several cases at once, after the work queued on any of them. Joining every
   * line at the same moment (nothing waits while holding a place) cannot deadlock.
   */
  runAll<T>(caseIds: readonly string[], work: () => Promise<T>): Promise<T> {
    const previous = Promise.all(caseIds.map((id) => this.tails.get(id) ?? Promise.resolve()));
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    for (const id of caseIds) this.tails.set(id, tail);
    void tail.then(() => {
      // The last in line cleans up, so the map holds only cases with work in flight.
      for (const id of caseIds) if (this.tails.get(id) === tail) this.tails.delete(id);
    });
    return result;
  }

  /** Cases with work queued or running (for tests). */
  get busy(): number {
    return this.tails.size;
  }
}
