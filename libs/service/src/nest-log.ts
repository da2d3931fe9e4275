import type { Logger } from '@nestjs/common';
import type { Log } from '#lumen/contracts';

/** The libraries' small log port, written through a Nest logger (JSON lines in production). */
export function nestLog(logger: Logger): Log {
  return {
    info: (message, fields) => {
      logger.log(message, fields ?? {});
    },
    warn: (message, fields) => {
      logger.warn(message, fields ?? {});
    },
  };
}
