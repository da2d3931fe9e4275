import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium, which the bootstrap installs: Lumen never downloads a browser. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless Chromium for the dashboard's and the HTML report's tests and benchmark. As root
 * it needs --no-sandbox; the background-networking flags keep it from calling out of a
 * machine whose network is closed. Fails loudly when Chromium is missing.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: run npm run bootstrap (it installs Debian's chromium)`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Where a browser test saves its screenshot of a view: LUMEN_SCREENSHOTS=docs/images
 * refreshes the README's pictures; unset, no file is written.
 */
export function screenshotPath(name: string): string | undefined {
  const dir = process.env['LUMEN_SCREENSHOTS'];
  return dir ? join(dir, `${name}.png`) : undefined;
}
