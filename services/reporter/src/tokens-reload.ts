import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Logger } from '@nestjs/common';
import { ApiTokens } from '#lumen/access';
import type { ResultsApi } from '#lumen/reporter';
import { nestLog, type ServiceWorker } from '#lumen/service';

/**
 * Reads the API's tokens file again every `everyMs`, so a rotated Secret takes effect
 * without a restart: a changed file that parses replaces the tokens at once; one that does
 * not is logged once, naming what is wrong (never a token), and the tokens in use stay.
 * Polling, because the kubelet swaps a mounted Secret's files by a symlink, which file
 * watchers miss. Without a tokens file there is nothing to follow.
 */
export function tokensReload(
  path: string | undefined,
  everyMs: number,
  api: ResultsApi,
): ServiceWorker {
  const log = nestLog(new Logger('ApiTokens'));
  const digest = (text: string) => createHash('sha256').update(text).digest('hex');
  let seen: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const check = async (): Promise<void> => {
    if (!path) return;
    const text = await readFile(path, 'utf8').catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      if (seen !== `unreadable:${reason}`)
        log.warn('cannot read the tokens file; keeping the tokens in use', { path, reason });
      seen = `unreadable:${reason}`;
      return undefined;
    });
    if (text === undefined || digest(text) === seen) return;
    seen = digest(text);
    try {
      const tokens = ApiTokens.parse(text, path);
      api.replaceTokens(tokens);
      log.info('API tokens reloaded', { path, tokens: tokens.size });
    } catch (error) {
      log.warn('the tokens file is invalid; keeping the tokens in use', {
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  };
  return {
    notReady: () => undefined,
    onApplicationBootstrap: async () => {
      if (!path) return;
      // The file as the boot parsed it is the one in use.
      seen = digest(await readFile(path, 'utf8'));
      const tick = () => {
        timer = setTimeout(() => void check().finally(tick), everyMs);
        timer.unref();
      };
      tick();
    },
    onApplicationShutdown: () => {
      clearTimeout(timer);
      return Promise.resolve();
    },
  };
}
