import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ApiSummary } from '#lumen/contracts';
import { apiGet, onTokenRefused, savedToken, saveToken } from './api.js';
import { useLoad } from './load.js';
import { href, useRoute, type Route } from './route.js';
import { CaseView } from './views/case.js';
import { MatrixView } from './views/matrix.js';
import { Overview } from './views/overview.js';
import { PairView } from './views/pair.js';
import { PoliciesView, PolicyView } from './views/policy.js';
import './style.css';

function SignIn(props: { readonly refused: string | null; readonly onToken: (t: string) => void }) {
  const [token, setToken] = useState('');
  return (
    <main class="sign-in">
      <h1>Lumen</h1>
      <p>
        The dashboard reads the reporter’s API with one of its bearer tokens (API_TOKENS_FILE). A
        token limited to namespaces sees only theirs.
      </p>
      {props.refused && (
        <p class="refused" role="alert">
          Refused: {props.refused}
        </p>
      )}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (token.trim()) props.onToken(token.trim());
        }}
      >
        <label>
          API token{' '}
          <input
            name="token"
            type="password"
            autocomplete="off"
            value={token}
            onInput={(e) => {
              setToken(e.currentTarget.value);
            }}
          />
        </label>{' '}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function View(props: { readonly route: Route }) {
  const { route } = props;
  switch (route.view) {
    case 'overview':
      return <Overview />;
    case 'matrix':
      return <MatrixView />;
    case 'pair':
      return <PairView source={route.source} destination={route.destination} />;
    case 'policies':
      return <PoliciesView />;
    case 'policy':
      return <PolicyView policy={route.policy} />;
    case 'case':
      return <CaseView caseId={route.caseId} />;
  }
}

function Scope() {
  const summary = useLoad('scope', () => apiGet<ApiSummary>('summary'));
  if (summary.state !== 'ready') return null;
  const { scope } = summary.value;
  return (
    <span class="scope" data-scope={scope === 'all' ? 'all' : scope.join(',')}>
      {scope === 'all' ? 'all namespaces' : `namespaces ${scope.join(', ')}`}
    </span>
  );
}

function App() {
  const route = useRoute();
  const [token, setToken] = useState(savedToken());
  const [refused, setRefused] = useState<string | null>(null);
  useEffect(
    () =>
      onTokenRefused((message) => {
        saveToken(null);
        setToken(null);
        setRefused(message);
      }),
    [],
  );
  if (!token)
    return (
      <SignIn
        refused={refused}
        onToken={(t) => {
          saveToken(t);
          setRefused(null);
          setToken(t);
        }}
      />
    );
  const tab = (to: Route, name: string, active: boolean) => (
    <a href={href(to)} class={active ? 'active' : ''}>
      {name}
    </a>
  );
  return (
    <>
      <header>
        <strong>Lumen</strong>
        <nav>
          {tab({ view: 'overview' }, 'Overview', route.view === 'overview')}
          {tab({ view: 'matrix' }, 'Matrix', route.view === 'matrix' || route.view === 'pair')}
          {tab(
            { view: 'policies' },
            'Policies',
            route.view === 'policies' || route.view === 'policy',
          )}
        </nav>
        <Scope />
        <button
          type="button"
          class="sign-out"
          onClick={() => {
            saveToken(null);
            setToken(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main key={token}>
        <View route={route} />
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (!root) throw new Error('the page has no #app element');
render(<App />, root);
