import {
  compileSelector,
  type LabelSelector,
  type Labels,
  type NormalizedPeer,
} from '#lumen/policy';

/** Marks every synthetic source pod and Lumen's namespace for them. */
export const SYNTHETIC_LABEL = 'lumen.dev/synthetic';

/** Labels of Lumen's namespace for synthetic sources. */
export function syntheticNamespaceLabels(namespace: string): Labels {
  return { 'kubernetes.io/metadata.name': namespace, [SYNTHETIC_LABEL]: 'true' };
}

/**
 * Label keys a synthetic source never carries, whatever a tenant's selector asks for:
 * Kubernetes' recommended labels (`app.kubernetes.io/…`) and Lumen's own (`lumen.dev/…`,
 * but for the marker). A peer selecting `app.kubernetes.io/name: lumen` would otherwise
 * have Lumen start a pod that its own Services and policies take for one of its parts.
 */
const RESERVED_LABEL_PREFIXES = ['app.kubernetes.io/', 'lumen.dev/'] as const;

/** The first reserved key among these labels, or undefined. */
export function reservedSyntheticLabel(labels: Labels): string | undefined {
  return Object.keys(labels).find((key) =>
    RESERVED_LABEL_PREFIXES.some((prefix) => key.startsWith(prefix)),
  );
}

/** Labels that satisfy a selector, or undefined when none simple do. */
function satisfying(selector: LabelSelector): Record<string, string> | undefined {
  const labels: Record<string, string> = { ...(selector.matchLabels ?? {}) };
  for (const requirement of selector.matchExpressions ?? []) {
    if (requirement.operator === 'In') labels[requirement.key] ??= requirement.values?.[0] ?? '';
    if (requirement.operator === 'Exists') labels[requirement.key] ??= 'lumen';
  }
  return compileSelector(selector).matches(labels) ? labels : undefined;
}

/** Labels that fail a selector, or undefined when every set of labels matches it. */
function failing(selector: LabelSelector): Record<string, string> | undefined {
  const candidates: Record<string, string>[] = [{}];
  for (const requirement of selector.matchExpressions ?? []) {
    if (requirement.operator === 'DoesNotExist') candidates.push({ [requirement.key]: 'lumen' });
    if (requirement.operator === 'NotIn' && requirement.values?.[0] !== undefined)
      candidates.push({ [requirement.key]: requirement.values[0] });
  }
  const compiled = compileSelector(selector);
  return candidates.find((labels) => !compiled.matches(labels));
}

/**
 * The labels of a pod in Lumen's own namespace that would stand in for a near miss no real
 * pod covers: the peer's pod labels from a namespace the peer does not select
 * (near-miss-namespace), or labels the peer does not select from there (near-miss-both).
 * A pod in a *matching* namespace without the labels (near-miss-pods) would have to live in
 * a tenant's namespace, so it is never synthesized. Undefined when no pod there can do it,
 * or when it would need a reserved label key.
 */
export function syntheticSourceLabels(
  reason: 'near-miss-pods' | 'near-miss-namespace' | 'near-miss-both',
  peer: NormalizedPeer & { kind: 'pods' },
  policyNamespace: string,
  namespace: string,
): Labels | undefined {
  if (reason === 'near-miss-pods') return undefined;
  const namespaceSelected = peer.namespaceSelector
    ? compileSelector(peer.namespaceSelector).matches(syntheticNamespaceLabels(namespace))
    : namespace === policyNamespace;
  if (namespaceSelected) return undefined;
  const podSelector = peer.podSelector ?? {};
  const labels = reason === 'near-miss-namespace' ? satisfying(podSelector) : failing(podSelector);
  if (!labels || reservedSyntheticLabel(labels)) return undefined;
  const marked = { ...labels, [SYNTHETIC_LABEL]: 'true' };
  // The marker itself must not change the answer.
  const matches = compileSelector(podSelector).matches(marked);
  return matches === (reason === 'near-miss-namespace') ? marked : undefined;
}
