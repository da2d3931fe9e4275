/**
 * Whether an error from the store means the database could not be reached (it restarts, the
 * network is down, it refuses connections for now), rather than that a statement or its
 * data is wrong. Only the first kind is worth waiting out: the same work succeeds once the
 * database answers again, while a bad statement fails the same way every time.
 */
export function isStoreUnreachable(error: unknown): boolean {
  for (let cause: unknown = error, depth = 0; cause && depth < 4; depth += 1) {
    if (typeof cause !== 'object') break;
    const { code, message } = cause as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && unreachableCode(code)) return true;
    if (typeof message === 'string' && UNREACHABLE_MESSAGES.test(message)) return true;
    // TypeORM wraps the driver's error (QueryFailedError.driverError); Node wraps in cause.
    cause =
      (cause as { driverError?: unknown }).driverError ?? (cause as { cause?: unknown }).cause;
  }
  return false;
}

/** Socket errors, and PostgreSQL's SQLSTATEs for a connection that failed or was shut down. */
function unreachableCode(code: string): boolean {
  return (
    SOCKET_CODES.has(code) ||
    // Class 08: connection exception.
    /^08[0-9A-Z]{3}$/.test(code) ||
    // Admin shutdown, crash shutdown, cannot connect now (starting up), too many connections.
    ['57P01', '57P02', '57P03', '53300'].includes(code)
  );
}

const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** node-postgres reports a dropped connection by message only. */
const UNREACHABLE_MESSAGES =
  /connection terminated|terminating connection|client has encountered a connection error|timeout exceeded when trying to connect|connection is not established|the database system is (starting up|shutting down|in recovery mode)/i;
