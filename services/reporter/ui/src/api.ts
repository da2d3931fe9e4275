/**
 * The dashboard's one way to the reporter: GET /api/v1/… with the bearer token the user
 * gave, kept for this browser tab only (sessionStorage, never a cookie or the URL).
 */
const TOKEN_KEY = 'lumen.api-token';

export class ApiRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRefused';
  }
}

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** Listeners told when the API refuses the token (401): the app asks for another. */
const refusedListeners = new Set<(message: string) => void>();
export function onTokenRefused(listener: (message: string) => void): () => void {
  refusedListeners.add(listener);
  return () => refusedListeners.delete(listener);
}

export async function apiGet<T>(
  path: string,
  query: Record<string, string | undefined> = {},
): Promise<T> {
  const search = new URLSearchParams(
    Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined),
  ).toString();
  const token = savedToken();
  const response = await fetch(`/api/v1/${path}${search ? `?${search}` : ''}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { message?: unknown };
    const message =
      typeof body.message === 'string' ? body.message : `${response.status} ${response.statusText}`;
    if (response.status === 401) for (const listener of refusedListeners) listener(message);
    throw new ApiRefused(response.status, message);
  }
  return (await response.json()) as T;
}

/** Every page of a paged list, up to `max` items. */
// The caller names the items' shape: the API's own types, from libs/contracts.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export async function apiAll<T>(
  path: string,
  query: Record<string, string | undefined>,
  max: number,
): Promise<{ items: T[]; complete: boolean }> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await apiGet<{ items: T[]; nextCursor: string | null }>(path, {
      ...query,
      limit: '500',
      cursor,
    });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && items.length < max);
  return { items, complete: cursor === undefined };
}
