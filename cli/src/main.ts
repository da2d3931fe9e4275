import { InputError } from '#lumen/scenario';
import { evaluateUsage, runEvaluate } from './commands/evaluate.js';
import { ExitCode, UsageError, processIo, type CommandIo } from './io.js';

const usage = `Usage: lumen COMMAND [OPTIONS]

Lumen proves that a cluster's NetworkPolicies are really enforced.

Commands:
  evaluate   compute what policies allow, from scenario or manifest files

Run 'lumen COMMAND --help' for a command's options.
`;

type Command = (args: readonly string[], io: CommandIo) => number | Promise<number>;

const commands: Record<string, { run: Command; usage: string }> = {
  evaluate: { run: runEvaluate, usage: evaluateUsage },
};

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
    if (error instanceof InputError) {
      io.stderr(`lumen ${name}: invalid input: ${error.message}\n`);
    } else if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.stderr(`lumen ${name}: ${(error as Error).message}\n\n${command.usage}`);
    } else {
      io.stderr(`lumen ${name}: ${(error as Error).stack ?? String(error)}\n`);
    }
    return ExitCode.error;
  }
}
