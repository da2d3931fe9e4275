import type { Logger } from '@nestjs/common';

export interface FieldLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** The libraries' small log port, written through a Nest logger (JSON lines in production). */
export function nestLog(logger: Logger): FieldLog {
  return {
    info: (message, fields) => {
      logger.log(message, fields ?? {});
    },
    warn: (message, fields) => {
      logger.warn(message, fields ?? {});
    },
  };
}
