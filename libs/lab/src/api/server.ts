import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApiError } from './errors.js';
import { openApiGroup, openApiIndex } from './openapi.js';
import { parse as parseYaml } from 'yaml';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { PROTOBUF, decodeProtobuf } from './protobuf.js';
import {
  RESOURCE_TYPES,
  apiVersionOf,
  resourceByKind,
  resourceByPlural,
  type KubeObject,
  type ResourceType,
} from './resources.js';
import { BadRequest, parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { ObjectStore, StoreEvent } from './store.js';
import { toTable, wantsTable } from './tables.js';
import { ServiceAccountTokens } from './service-account-tokens.js';

export interface ApiServerOptions {
  readonly store: ObjectStore;
  /** Serve HTTPS with this key and certificate (PEM); plain HTTP without. */
  readonly tls?: { readonly key: string; readonly cert: string };
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** A second token that may only get, list and watch (and ask what it may do). */
  readonly readerToken?: string;
  readonly bookmarkIntervalMs?: number;
  readonly now?: () => Date;
  /**
   * Custom resources (`plural.group`) whose CRD is not installed yet: their paths answer
   * 404 until `installCrd` (discovery still lists them). For tests of CRDs installed late.
   */
  readonly notInstalled?: readonly string[];
  /** Extra routes (the lab's control API); returns true when it answered the request. */
  readonly extraRoutes?: (
    request: IncomingMessage,
    response: ServerResponse,
    url: URL,
  ) => Promise<boolean>;
}

interface Target {
  readonly type: ResourceType;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
}

type Route =
  | { readonly kind: 'document'; readonly body: unknown }
  | { readonly kind: 'resource'; readonly target: Target };

const READ_VERBS = ['get', 'list', 'watch'];

/** The API server's words for a verb the caller lacks. */
function forbidden(request: IncomingMessage, target: Target): ApiError {
  const verb =
    { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[request.method ?? ''] ??
    'access';
  const group = target.type.group ? `.${target.type.group}` : '';
  const where = target.namespace
    ? ` in the namespace "${target.namespace}"`
    : ' at the cluster scope';
  return new ApiError(
    403,
    'Forbidden',
    `${target.type.plural}${group}${target.name ? ` "${target.name}"` : ''} is forbidden: User "lab-reader" cannot ${verb} resource "${target.type.plural}" in API group "${target.type.group}"${where}`,
  );
}

const VERSION = {
  major: '1',
  minor: '34',
  gitVersion: 'v1.34.0-lumen-lab',
  platform: 'linux/amd64',
};

function groupVersions(): { group: string; version: string }[] {
  const seen = new Map<string, { group: string; version: string }>();
  for (const t of RESOURCE_TYPES) seen.set(apiVersionOf(t), { group: t.group, version: t.version });
  return [...seen.values()];
}

function resourceList(group: string, version: string): unknown {
  const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: RESOURCE_TYPES.filter((t) => t.group === group && t.version === version).flatMap(
      (t) => [
        {
          name: t.plural,
          singularName: t.singular,
          namespaced: t.namespaced,
          kind: t.kind,
          verbs,
          shortNames: t.shortNames,
        },
        ...t.subresources.map((s) => ({
          name: `${t.plural}/${s}`,
          singularName: '',
          namespaced: t.namespaced,
          kind: t.kind,
          verbs: ['get', 'patch', 'update'],
        })),
      ],
    ),
  };
}

function discovery(segments: readonly string[]): unknown {
  if (segments.length === 1 && segments[0] === 'api') {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
  }
  if (segments.length === 1 && segments[0] === 'apis') {
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [...new Set(groupVersions().map((g) => g.group))]
        .filter((group) => group)
        .map((group) => {
          // One entry per group, every version in it; the newest preferred (v1alpha2 > v1alpha1).
          const versions = groupVersions()
            .filter((g) => g.group === group)
            .map(({ version }) => ({ groupVersion: `${group}/${version}`, version }))
            .sort((a, b) => (a.version < b.version ? 1 : -1));
          return { name: group, versions, preferredVersion: versions[0] };
        }),
    };
  }
  if (segments[0] === 'api' && segments.length === 2) return resourceList('', segments[1] ?? '');
  if (segments[0] === 'apis' && segments.length === 3)
    return resourceList(segments[1] ?? '', segments[2] ?? '');
  return undefined;
}

/** `[plural, namespace, name, subresource]` of the path after the group version. */
function splitResourcePath(
  group: string,
  version: string,
  rest: readonly string[],
): (string | undefined)[] {
  const namespaced =
    rest[0] === 'namespaces' &&
    rest.length >= 3 &&
    resourceByPlural(group, version, rest[2] ?? '')?.namespaced === true;
  return namespaced ? [rest[2], rest[1], rest[3], rest[4]] : [rest[0], undefined, rest[1], rest[2]];
}

/** `/api/v1/…` and `/apis/<group>/<version>/…` paths to a resource, an object or a subresource. */
function resourceRoute(segments: readonly string[]): Target | undefined {
  const core = segments[0] === 'api';
  const group = core ? '' : (segments[1] ?? '');
  const version = (core ? segments[1] : segments[2]) ?? '';
  const [plural, namespace, name, subresource] = splitResourcePath(
    group,
    version,
    segments.slice(core ? 2 : 3),
  );
  if (plural === undefined) return undefined;
  const type = resourceByPlural(group, version, plural);
  if (!type || (!type.namespaced && namespace !== undefined)) return undefined;
  if (subresource !== undefined && !type.subresources.includes(subresource)) return undefined;
  return { type, namespace, name, subresource };
}

function route(pathname: string): Route | undefined {
  if (pathname === '/version') return { kind: 'document', body: VERSION };
  if (['/healthz', '/readyz', '/livez'].includes(pathname)) return { kind: 'document', body: 'ok' };
  if (pathname === '/openapi/v3') return { kind: 'document', body: openApiIndex() };
  if (pathname.startsWith('/openapi/v3/')) {
    const group = openApiGroup(pathname.slice('/openapi/v3/'.length));
    return group ? { kind: 'document', body: group } : undefined;
  }
  const segments = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const document = discovery(segments);
  if (document) return { kind: 'document', body: document };
  if (segments[0] !== 'api' && segments[0] !== 'apis') return undefined;
  const target = resourceRoute(segments);
  return target ? { kind: 'resource', target } : undefined;
}

/** Server-side apply's media type. */
const APPLY_PATCH = 'application/apply-patch+yaml';

async function readBody(request: IncomingMessage, contentType = ''): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  if (contentType.startsWith(PROTOBUF) && bytes.length > 0) return decodeProtobuf(bytes);
  const text = bytes.toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // An apply may be YAML; every other body is JSON.
    if (contentType.startsWith(APPLY_PATCH)) {
      try {
        return parseYaml(text) as unknown;
      } catch {
        throw ApiError.badRequest('the apply body is not valid YAML');
      }
    }
    throw ApiError.badRequest(
      `the request body is not valid JSON${contentType ? ` (Content-Type: ${contentType})` : ''}`,
    );
  }
}

/** The object an apply creates: the applied configuration, named by the path. */
function appliedObject(body: unknown, name: string): KubeObject {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw ApiError.badRequest('an apply body must be an object');
  const object = body as KubeObject;
  const given = (object.metadata as KubeObject['metadata'] | undefined)?.name;
  if (given !== undefined && given !== name)
    throw ApiError.badRequest(
      `the name of the object (${given}) does not match the name on the URL (${name})`,
    );
  return { ...object, metadata: { ...object.metadata, name } };
}

function send(response: ServerResponse, code: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(code, {
    'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json',
  });
  response.end(text);
}

/**
 * A test double of the Kubernetes API server, over real HTTP: discovery, list (with
 * label/field selectors and paging), watch (resume by resourceVersion, 410 Gone,
 * bookmarks), create/update/patch/delete with the real status codes and `Status` bodies,
 * and server-side tables for kubectl. It is part of the lab, not a product feature.
 */
export class ApiServer {
  private readonly server: Server;
  private readonly closers = new Set<() => void>();
  private readonly now: () => Date;
  private readonly notInstalled: Set<string>;
  private readonly tokens: ServiceAccountTokens;

  constructor(private readonly options: ApiServerOptions) {
    this.now = options.now ?? ((): Date => new Date());
    this.tokens = new ServiceAccountTokens(
      options.store,
      resourceByKind('Pod') as ResourceType,
      this.now,
    );
    this.notInstalled = new Set(options.notInstalled);
    const handler = (request: IncomingMessage, response: ServerResponse): void => {
      this.handle(request, response).catch((error: unknown) => {
        this.fail(response, error);
      });
    };
    this.server = options.tls ? createHttpsServer(options.tls, handler) : createHttpServer(handler);
  }

  /** A TokenRequest's token, as the kubelet asks for a pod's projected token volume. */
  mintServiceAccountToken(namespace: string, serviceAccount: string, body: object): string {
    const request = this.tokens.request(namespace, serviceAccount, body);
    return (request['status'] as { token: string }).token;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, host, resolve));
    const address = this.server.address() as AddressInfo;
    return `${this.options.tls ? 'https' : 'http'}://${host}:${address.port}`;
  }

  /** Serves a custom resource held back by `notInstalled`, as installing its CRD would. */
  installCrd(resource: string): void {
    this.notInstalled.delete(resource);
  }

  /** Stops serving a custom resource, as deleting its CRD would (its watches end). */
  uninstallCrd(resource: string): void {
    this.notInstalled.add(resource);
    this.dropWatches();
  }

  /** Ends every open watch, as an API server restart or a load balancer would. */
  dropWatches(): void {
    for (const close of [...this.closers]) close();
  }

  async close(): Promise<void> {
    for (const close of this.closers) close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }

  private fail(response: ServerResponse, error: unknown): void {
    const apiError =
      error instanceof ApiError
        ? error
        : error instanceof BadRequest
          ? ApiError.badRequest(error.message)
          : new ApiError(500, 'InternalError', String(error));
    if (response.headersSent) {
      response.end();
      return;
    }
    send(response, apiError.code, apiError.toStatus());
  }

  /** Who is calling: the lab's user, its reader (true), or nobody (401). */
  private isReader(request: IncomingMessage): boolean {
    const { token, readerToken } = this.options;
    const given = request.headers.authorization;
    if (readerToken !== undefined && given === `Bearer ${readerToken}`) return true;
    if (token !== undefined && given !== `Bearer ${token}`)
      throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    return false;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://lab');
    const reader = this.isReader(request);
    if (!reader && (await this.options.extraRoutes?.(request, response, url))) return;
    const found = route(url.pathname);
    const held =
      found?.kind === 'resource' &&
      this.notInstalled.has(`${found.target.type.plural}.${found.target.type.group}`);
    if (!found || held)
      throw new ApiError(
        404,
        'NotFound',
        `the server could not find the requested resource (${request.method ?? ''} ${url.pathname})`,
      );
    if (found.kind === 'document') {
      send(response, 200, found.body);
      return;
    }
    if (await this.review(request, response, found.target, reader)) return;
    if (reader && !['GET', 'HEAD'].includes(request.method ?? 'GET'))
      throw forbidden(request, found.target);
    await this.resource(request, response, found.target, url.searchParams);
  }

  /** Access reviews, TokenRequest and TokenReview; false for any other request. */
  private async review(
    request: IncomingMessage,
    response: ServerResponse,
    target: Target,
    reader: boolean,
  ): Promise<boolean> {
    if (target.type.kind === 'SelfSubjectAccessReview') {
      await this.accessReview(request, response, reader);
      return true;
    }
    return this.serviceAccountToken(request, response, target, reader);
  }

  /** TokenRequest and TokenReview (the lab's user only); false for any other request. */
  private async serviceAccountToken(
    request: IncomingMessage,
    response: ServerResponse,
    target: Target,
    reader: boolean,
  ): Promise<boolean> {
    const isRequest = target.type.kind === 'ServiceAccount' && target.subresource === 'token';
    if (!isRequest && target.type.kind !== 'TokenReview') return false;
    if (request.method !== 'POST')
      throw new ApiError(405, 'MethodNotAllowed', `${target.type.plural}: only create is served`);
    if (reader) throw forbidden(request, target);
    const body = await readBody(request);
    send(
      response,
      201,
      isRequest
        ? this.tokens.request(target.namespace ?? '', target.name ?? '', body)
        : this.tokens.review(body),
    );
    return true;
  }

  /** What the caller may do: everything, or (the reader) get, list and watch. */
  private async accessReview(
    request: IncomingMessage,
    response: ServerResponse,
    reader: boolean,
  ): Promise<void> {
    const review = (await readBody(request)) as KubeObject & {
      spec?: { resourceAttributes?: { verb?: string } };
    };
    const allowed = !reader || READ_VERBS.includes(review.spec?.resourceAttributes?.verb ?? '');
    send(response, 201, {
      ...review,
      status: { allowed, ...(allowed ? {} : { reason: 'the lab reader may only read' }) },
    });
  }

  private async resource(
    request: IncomingMessage,
    response: ServerResponse,
    target: Target,
    query: URLSearchParams,
  ): Promise<void> {
    const { store } = this.options;
    const { type, namespace, name, subresource } = target;
    const method = request.method ?? 'GET';
    if (method === 'GET' && name === undefined) {
      if (query.get('watch') === 'true' || query.get('watch') === '1')
        this.watch(request, response, target, query);
      else this.list(request, response, target, query);
      return;
    }
    if (method === 'POST' && name === undefined) {
      send(
        response,
        201,
        store.create(
          type,
          namespace,
          (await readBody(request, request.headers['content-type'])) as KubeObject,
        ),
      );
      return;
    }
    if (name === undefined)
      throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on a collection`);
    switch (method) {
      case 'GET':
        send(response, 200, store.get(type, namespace, name));
        return;
      case 'PUT':
        send(
          response,
          200,
          store.update(
            type,
            namespace,
            name,
            (await readBody(request, request.headers['content-type'])) as KubeObject,
            subresource,
          ),
        );
        return;
      case 'PATCH':
        await this.patch(request, response, target, name);
        return;
      case 'DELETE':
        send(response, 200, store.delete(type, namespace, name));
        return;
      default:
        throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported`);
    }
  }

  private async patch(
    request: IncomingMessage,
    response: ServerResponse,
    target: Target,
    name: string,
  ): Promise<void> {
    const { store } = this.options;
    const { type, namespace, subresource } = target;
    const contentType = request.headers['content-type'] ?? '';
    const body = await readBody(request, contentType);
    // Server-side apply (Helm 4's default) creates what does not exist yet.
    if (contentType.startsWith(APPLY_PATCH) && !store.find(type, namespace, name)) {
      send(response, 201, store.create(type, namespace, appliedObject(body, name)));
      return;
    }
    const patched = this.patched(store.get(type, namespace, name), contentType, body);
    send(
      response,
      200,
      store.update(
        type,
        namespace,
        name,
        { ...patched, metadata: { ...patched.metadata, resourceVersion: undefined } },
        subresource,
      ),
    );
  }

  private patched(current: KubeObject, contentType: string, patch: unknown): KubeObject {
    const mediaType = contentType.split(';')[0]?.trim();
    switch (mediaType) {
      case 'application/merge-patch+json':
        return mergePatch(current, patch) as KubeObject;
      case 'application/strategic-merge-patch+json':
        return strategicMergePatch(current, patch) as KubeObject;
      // One field manager's apply over what it applied before: its fields merged in as a
      // strategic merge does; fields it stopped naming are kept (a real server's field
      // ownership would remove them).
      case APPLY_PATCH:
        return strategicMergePatch(current, patch) as KubeObject;
      case 'application/json-patch+json':
        return jsonPatch(current, patch) as KubeObject;
      default:
        throw new ApiError(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got ${contentType})`,
        );
    }
  }

  private matcher(target: Target, query: URLSearchParams): (object: KubeObject) => boolean {
    const labels = parseLabelSelector(query.get('labelSelector'));
    const fields = parseFieldSelector(query.get('fieldSelector'));
    return (object) =>
      (target.namespace === undefined || object.metadata.namespace === target.namespace) &&
      labels(object) &&
      fields(object);
  }

  private list(
    request: IncomingMessage,
    response: ServerResponse,
    target: Target,
    query: URLSearchParams,
  ): void {
    const matches = this.matcher(target, query);
    const { items, resourceVersion } = this.options.store.list(target.type, target.namespace);
    let selected = items.filter(matches);
    const offset = Number(
      query.get('continue') ? Buffer.from(query.get('continue') ?? '', 'base64url').toString() : 0,
    );
    const limit = Number(query.get('limit') ?? 0);
    let next: string | undefined;
    if (limit > 0 && selected.length > offset + limit)
      next = Buffer.from(String(offset + limit)).toString('base64url');
    selected = limit > 0 ? selected.slice(offset, offset + limit) : selected.slice(offset);
    const metadata = {
      resourceVersion: String(resourceVersion),
      ...(next ? { continue: next } : {}),
    };
    if (wantsTable(request.headers.accept)) {
      send(response, 200, {
        ...toTable(target.type.kind, selected, String(resourceVersion), true, this.now()),
        metadata,
      });
      return;
    }
    send(response, 200, {
      kind: `${target.type.kind}List`,
      apiVersion: apiVersionOf(target.type),
      metadata,
      items: selected,
    });
  }

  private watch(
    request: IncomingMessage,
    response: ServerResponse,
    target: Target,
    query: URLSearchParams,
  ): void {
    const { store } = this.options;
    const matches = this.matcher(target, query);
    const asTable = wantsTable(request.headers.accept);
    const requested = query.get('resourceVersion');
    const since = requested && requested !== '0' ? Number(requested) : undefined;
    if (since !== undefined && !Number.isInteger(since))
      throw ApiError.badRequest(`invalid resourceVersion "${requested ?? ''}"`);
    let columnsSent = false;
    const write = (type: string, object: KubeObject | Record<string, unknown>): void => {
      let payload = object;
      if (asTable && type !== 'ERROR' && type !== 'BOOKMARK') {
        payload = toTable(
          target.type.kind,
          [object as KubeObject],
          String((object as KubeObject).metadata.resourceVersion),
          !columnsSent,
          this.now(),
        );
        columnsSent = true;
      }
      response.write(`${JSON.stringify({ type, object: payload })}\n`);
    };
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    response.flushHeaders();
    const relay = (event: StoreEvent): void => {
      if (event.resource !== target.type) return;
      const now = matches(event.object);
      const before = event.previous ? matches(event.previous) : false;
      if (event.type === 'DELETED' && (now || before)) write('DELETED', event.object);
      else if (event.type === 'ADDED' && now) write('ADDED', event.object);
      else if (event.type === 'MODIFIED' && now) write(before ? 'MODIFIED' : 'ADDED', event.object);
      else if (event.type === 'MODIFIED' && before) write('DELETED', event.object);
    };
    // A watch list (client-go's streaming list, `sendInitialEvents`): every object as
    // ADDED, then a bookmark that says the initial events are over, then the changes.
    const watchList = query.get('sendInitialEvents') === 'true';
    if (since === undefined || watchList) {
      for (const object of store.list(target.type, target.namespace).items.filter(matches))
        write('ADDED', object);
      if (watchList)
        write('BOOKMARK', {
          kind: target.type.kind,
          apiVersion: apiVersionOf(target.type),
          metadata: {
            resourceVersion: String(store.resourceVersion),
            annotations: { 'k8s.io/initial-events-end': 'true' },
          },
        });
    } else {
      const missed = store.eventsSince(since);
      if (!missed) {
        write(
          'ERROR',
          new ApiError(
            410,
            'Expired',
            `too old resource version: ${since} (${store.resourceVersion})`,
          ).toStatus(),
        );
        response.end();
        return;
      }
      missed.forEach(relay);
    }
    const unsubscribe = store.subscribe(relay);
    const timers: NodeJS.Timeout[] = [];
    if (query.get('allowWatchBookmarks') === 'true') {
      const bookmark = (): void => {
        write('BOOKMARK', {
          kind: target.type.kind,
          apiVersion: apiVersionOf(target.type),
          metadata: { resourceVersion: String(store.resourceVersion) },
        });
      };
      timers.push(setInterval(bookmark, this.options.bookmarkIntervalMs ?? 10_000));
    }
    const close = (): void => {
      unsubscribe();
      timers.forEach(clearInterval);
      timers.forEach(clearTimeout);
      this.closers.delete(close);
      response.end();
    };
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? 0);
    if (timeoutSeconds > 0) timers.push(setTimeout(close, timeoutSeconds * 1000));
    this.closers.add(close);
    request.on('close', close);
  }
}
