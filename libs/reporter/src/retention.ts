import type { Clock, Log, RetentionPolicy, RetentionReport, Stop } from '#lumen/contracts';
import type { RetentionSettings } from './settings.js';

/** The store as retention needs it; CaseStore (libs/store) is the real one. */
export interface RetentionStore {
  applyRetention(policy: RetentionPolicy, now: Date): Promise<RetentionReport>;
}

/**
 * Applies the retention policy now and then every `everyMs`, one run at a time. A failed
 * run is logged and the next one tries again: retention never stops the reporter.
 */
export function startRetention(
  ports: { readonly store: RetentionStore; readonly clock: Clock; readonly log: Log },
  settings: RetentionSettings,
): Stop {
  let running: Promise<void> | undefined;
  const runOnce = (): void => {
    if (running) return;
    running = ports.store
      .applyRetention(settings, ports.clock.now())
      .then((deleted) => {
        if (deleted.attempts + deleted.history + deleted.cases + deleted.alerts > 0)
          ports.log.info('retention applied', { ...deleted });
      })
      .catch((error: unknown) => {
        ports.log.warn('retention failed; it runs again later', { error: String(error) });
      })
      .finally(() => {
        running = undefined;
      });
  };
  runOnce();
  const timer = setInterval(runOnce, settings.everyMs);
  return async () => {
    clearInterval(timer);
    await running;
  };
}
