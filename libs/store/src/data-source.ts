import { DataSource } from 'typeorm';
import { ENTITIES } from './entities.js';
import { Initial1795669200000 } from './migrations/1795669200000-initial.js';
import { CaseProbing1795700000000 } from './migrations/1795700000000-case-probing.js';
import { AttemptPods1795710000000 } from './migrations/1795710000000-attempt-pods.js';
import { ResultsAndAlerts1795720000000 } from './migrations/1795720000000-results-and-alerts.js';
import { MatrixCoverage1795730000000 } from './migrations/1795730000000-matrix-coverage.js';
import { Retention1795740000000 } from './migrations/1795740000000-retention.js';
import { RotationTally1795750000000 } from './migrations/1795750000000-rotation-tally.js';
import { ServicePaths1795760000000 } from './migrations/1795760000000-service-paths.js';

export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly schema?: string };

/** `DATABASE_URL` semantics: a postgres:// URL means PostgreSQL; nothing means SQLite at `sqlitePath`. */
export function storeLocation(databaseUrl: string | undefined, sqlitePath: string): StoreLocation {
  if (!databaseUrl) return { kind: 'sqlite', path: sqlitePath };
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return { kind: 'postgres', url: databaseUrl };
  throw new Error(
    `DATABASE_URL must be a postgres:// or postgresql:// URL (got "${databaseUrl.replace(/\/\/[^@]*@/, '//***@')}")`,
  );
}

export const MIGRATIONS = [
  Initial1795669200000,
  CaseProbing1795700000000,
  AttemptPods1795710000000,
  ResultsAndAlerts1795720000000,
  MatrixCoverage1795730000000,
  Retention1795740000000,
  RotationTally1795750000000,
  ServicePaths1795760000000,
];

/** The schema is made by migrations, never by `synchronize`. */
export function createDataSource(location: StoreLocation): DataSource {
  const common = {
    entities: ENTITIES,
    migrations: MIGRATIONS,
    synchronize: false,
    migrationsRun: false,
    logging: false,
  } as const;
  if (location.kind === 'sqlite')
    return new DataSource({
      ...common,
      type: 'better-sqlite3',
      database: location.path,
      enableWAL: true,
    });
  return new DataSource({
    ...common,
    type: 'postgres',
    url: location.url,
    ...(location.schema ? { schema: location.schema } : {}),
  });
}
