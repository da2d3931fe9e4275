import type { ComponentChildren } from 'preact';
import type { Outcome } from '#lumen/contracts';
import type { Loaded } from '../load.js';
import { OUTCOME_COLOUR } from '../format.js';

/** A view's data: a line while it loads, the API's own message when it fails. */
export function Await<T>(props: {
  readonly loaded: Loaded<T>;
  readonly children: (value: T) => ComponentChildren;
}) {
  if (props.loaded.state === 'loading') return <p class="loading">Loading…</p>;
  if (props.loaded.state === 'failed')
    return (
      <p class="error" role="alert">
        {props.loaded.message}
      </p>
    );
  return <>{props.children(props.loaded.value)}</>;
}

export function OutcomeBadge(props: { readonly outcome: Outcome | 'unverified' | null }) {
  const outcome = props.outcome ?? 'unverified';
  return (
    <span class={`badge outcome-${outcome}`} style={{ background: OUTCOME_COLOUR[outcome] }}>
      {outcome}
    </span>
  );
}
