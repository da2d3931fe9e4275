import { Controller, Get, Req, Res } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * What the page may load: its own scripts, styles and API, nothing inline, nothing from
 * elsewhere (the dashboard works air-gapped), and it may not be framed.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface UiFile {
  readonly body: Buffer;
  readonly type: string;
  /** Vite names built assets by their content hash: cached for good. */
  readonly immutable: boolean;
}

/** The built dashboard: dist/ui, from the compiled reporter (dist/) or from its sources. */
export function dashboardDirectory(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, '../../../../ui'), join(here, '../../../../dist/ui')].find((dir) =>
    existsSync(join(dir, 'index.html')),
  );
}

function filesUnder(root: string, dir = root): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) for (const [k, v] of filesUnder(root, path)) files.set(k, v);
    else
      files.set(`/${relative(root, path)}`, {
        body: readFileSync(path),
        type: TYPES[extname(entry.name)] ?? 'application/octet-stream',
        immutable: relative(root, path).startsWith('assets/'),
      });
  }
  return files;
}

/**
 * /ui: the dashboard's static files, read once at start into memory and served by exact
 * name (no path from the request ever reaches the file system). The files hold no data:
 * every number on the page comes from /api/v1 with the user's bearer token.
 */
@Controller('ui')
export class DashboardController {
  private readonly files: Map<string, UiFile>;

  constructor() {
    const dir = dashboardDirectory();
    this.files = dir ? filesUnder(dir) : new Map<string, UiFile>();
  }

  @Get()
  root(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    this.serve(request, response);
  }

  @Get('*path')
  file(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    this.serve(request, response);
  }

  private serve(request: IncomingMessage, response: ServerResponse): void {
    const path = new URL(request.url ?? '/', 'http://reporter').pathname.replace(/^\/ui/, '');
    if (path === '') {
      response.writeHead(308, { location: '/ui/' }).end();
      return;
    }
    const file = this.files.get(path === '/' ? '/index.html' : path);
    const headers = {
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    };
    if (!file) {
      const message =
        this.files.size === 0
          ? 'the dashboard is not built: run `node scripts/build.mjs` (it builds dist/ui)'
          : `no such file: /ui${path}`;
      response
        .writeHead(404, { ...headers, 'content-type': 'application/json; charset=utf-8' })
        .end(JSON.stringify({ statusCode: 404, message, error: 'Not Found' }));
      return;
    }
    response
      .writeHead(200, {
        ...headers,
        'content-type': file.type,
        'content-length': file.body.length,
        'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      })
      .end(file.body);
  }
}
