import { Logger } from '@nestjs/common';
import type { ResultsApi } from '#lumen/reporter';
import { nestLog, type ServiceWorker } from '#lumen/service';
import { CaseStore, type StoreLocation } from '#lumen/store';

const RETRY_MS = 2000;

/**
 * A standby reporter's API. With leader election, only the Lease holder judges and writes;
 * a Service in front of several replicas sends API calls to every Ready one, so a standby
 * answers them too, reading what the leader stores in PostgreSQL (SQLite has one replica,
 * and nothing to do here). It is not Ready until its store is open and the leader has
 * migrated the schema to this version, so a call never reaches a replica that cannot
 * answer it. When this replica leads, the leader's own store takes over the API.
 */
export function standbyApi(location: StoreLocation, api: ResultsApi): ServiceWorker {
  const log = nestLog(new Logger('StandbyApi'));
  let reader: CaseStore | undefined;
  let waiting = 'the store is not open yet';
  let stopped = false;
  let opening: Promise<void> | undefined;
  const pause = () => new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
  // Asked afresh after every wait: the leader may have attached its store, or Nest stopped.
  const stillNeeded = (): boolean => !stopped && !api.attached;
  const open = async (): Promise<void> => {
    for (let attempt = 0; stillNeeded(); attempt += 1) {
      try {
        reader ??= await CaseStore.openForReading(location);
        if (!(await reader.migrationsPending())) {
          if (stillNeeded()) {
            api.attach(reader.results);
            log.info('serving the API read-only while another replica leads');
          }
          return;
        }
        waiting = "the leader has not migrated the store's schema to this version yet";
      } catch (error) {
        waiting = `the store is unreachable: ${error instanceof Error ? error.message : String(error)}`;
        // Once, then every minute: a standby may wait long for a database to come back.
        if (attempt % 30 === 0) log.warn('the standby API cannot read the store yet', { waiting });
      }
      await pause();
    }
  };
  return {
    notReady: () => (api.attached ? undefined : waiting),
    onApplicationBootstrap: () => {
      // In the background: the health endpoints answer (not Ready) while the store opens.
      opening = open();
      return Promise.resolve();
    },
    onApplicationShutdown: async () => {
      stopped = true;
      await opening;
      await reader?.close();
    },
  };
}
