import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';

/** What a running lab leaves in its state directory, so any later command can find it. */
export interface LabState {
  readonly name: string;
  readonly id: string;
  readonly apiServer: string;
  readonly token: string;
  /** PEM of the certificate the API serves. */
  readonly caCertificate: string;
  readonly kubeconfig: string;
  readonly daemonPid: number;
  readonly nodes: number;
  readonly podCidr: string;
  readonly startedAt: string;
}

/** What `lab up` hands the daemon. */
export interface DaemonConfig {
  readonly name: string;
  readonly root: string;
  readonly nodes: number;
  readonly podCidr: string;
  readonly faults: readonly string[];
}

/** A JSON file the lab wrote itself, or undefined when it is absent. */
export function readJson(file: string): unknown {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Written to a temporary file and renamed, so a reader never sees half a file. */
export function writeJson(file: string, value: unknown): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
