import { DEFAULT_LAB_ROOT } from '#lumen/lab';

/** The CLI's environment, read once. */
export interface CliConfig {
  /** Where labs keep their state (LUMEN_LAB_ROOT). */
  readonly labRoot: string;
}

export function cliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const labRoot = env.LUMEN_LAB_ROOT ?? DEFAULT_LAB_ROOT;
  if (!labRoot.startsWith('/'))
    throw new Error(`LUMEN_LAB_ROOT must be an absolute path, not "${labRoot}"`);
  return { labRoot };
}
