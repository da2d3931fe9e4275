import { InputError } from '#lumen/scenario';
import { demoUsage, runDemo } from './commands/demo.js';
import { evaluateUsage, runEvaluate } from './commands/evaluate.js';
import { labUsage, runLab } from './commands/lab.js';
import { runRun, runUsage } from './commands/run.js';
import { ExitCode, UsageError, processIo, type CommandIo } from './io.js';

const usage = `Usage: lumen COMMAND [OPTIONS]

Lumen proves that a cluster's NetworkPolicies are really enforced.

Commands:
  demo       the whole of Lumen on this machine, in the lab (root), then torn down
  evaluate   compute what policies allow, from scenario or manifest files
  lab        a Kubernetes-shaped cluster of network namespaces, with a breakable enforcer
  run        verify a cluster: probe every case from real pods, judge, report (--once)

Run 'lumen COMMAND --help' for a command's options.
`;

type Command = (args: readonly string[], io: CommandIo) => number | Promise<number>;

const commands: Record<string, { run: Command; usage: string }> = {
  demo: { run: runDemo, usage: demoUsage },
  evaluate: { run: runEvaluate, usage: evaluateUsage },
  lab: { run: runLab, usage: labUsage },
  run: { run: runRun, usage: runUsage },
};

/** What a failed command says: input and usage errors briefly, programming errors in full. */
function errorMessage(command: string, error: unknown, usage: string): string {
  if (error instanceof InputError) return `lumen ${command}: invalid input: ${error.message}\n`;
  const parseError = (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ?? false;
  if (error instanceof UsageError || parseError)
    return `lumen ${command}: ${(error as Error).message}\n\n${usage}`;
  if (error instanceof Error && !(error instanceof TypeError || error instanceof ReferenceError)) {
    return `lumen ${command}: ${error.message}\n`;
  }
  return `lumen ${command}: ${(error as Error).stack ?? String(error)}\n`;
}

/** Runs the CLI and returns its exit code; it never throws. */
export async function main(argv: readonly string[], io: CommandIo = processIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(usage);
    return name === undefined ? ExitCode.error : ExitCode.ok;
  }
  const command = commands[name];
  if (!command) {
    io.stderr(`lumen: unknown command "${name}"\n\n${usage}`);
    return ExitCode.error;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    io.stderr(errorMessage(name, error, command.usage));
    return ExitCode.error;
  }
}
