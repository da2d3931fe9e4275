import type { LoggerService } from '@nestjs/common';

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Structured JSON logs, one object a line: time, level, service, context, message and
 * fields (ids such as caseId, batchId, traceId; never whole payloads).
 */
export class JsonLogger implements LoggerService {
  constructor(
    private readonly service: string,
    private readonly minimum: Level = 'info',
    private readonly write: (line: string) => void = (line) => process.stdout.write(line),
  ) {}

  private emit(level: Level, message: unknown, rest: unknown[]): void {
    if (ORDER[level] < ORDER[this.minimum]) return;
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const fields =
      rest.find(
        (r): r is Record<string, unknown> =>
          typeof r === 'object' && r !== null && !(r instanceof Error),
      ) ?? {};
    const error =
      rest.find((r): r is Error => r instanceof Error) ??
      (message instanceof Error ? message : undefined);
    const text =
      message instanceof Error
        ? message.message
        : typeof message === 'string'
          ? message
          : JSON.stringify(message);
    this.write(
      `${JSON.stringify({ time: new Date().toISOString(), level, service: this.service, ...(context ? { context } : {}), message: text, ...fields, ...(error ? { error: error.message } : {}) })}\n`,
    );
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.emit('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.emit('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.emit('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.emit('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.emit('debug', message, rest);
  }
}
