import { useEffect, useState } from 'preact/hooks';

/** The dashboard's places, in the URL's fragment: a link can be shared and reloaded. */
export type Route =
  | { view: 'overview' }
  | { view: 'matrix' }
  | { view: 'pair'; source: string; destination: string }
  | { view: 'policies' }
  | { view: 'policy'; policy: string }
  | { view: 'case'; caseId: string };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [view, a, b] = parts;
  if (view === 'matrix' && a && b) return { view: 'pair', source: a, destination: b };
  if (view === 'matrix') return { view: 'matrix' };
  if (view === 'policies') return { view: 'policies' };
  if (view === 'policy' && a && b) return { view: 'policy', policy: `${a}/${b}` };
  if (view === 'case' && a) return { view: 'case', caseId: a };
  return { view: 'overview' };
}

export function href(route: Route): string {
  switch (route.view) {
    case 'overview':
      return '#/';
    case 'matrix':
      return '#/matrix';
    case 'pair':
      return `#/matrix/${encodeURIComponent(route.source)}/${encodeURIComponent(route.destination)}`;
    case 'policies':
      return '#/policies';
    case 'policy':
      return `#/policy/${route.policy.split('/').map(encodeURIComponent).join('/')}`;
    case 'case':
      return `#/case/${encodeURIComponent(route.caseId)}`;
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = (): void => {
      setRoute(parseRoute(location.hash));
    };
    addEventListener('hashchange', changed);
    return () => {
      removeEventListener('hashchange', changed);
    };
  }, []);
  return route;
}
