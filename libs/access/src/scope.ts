/*
 * What a caller limited to namespaces (an API token, an alert receiver) may see of things
 * that concern other namespaces too. One place for the rules, so the API and alerts agree
 * (docs/security.md, "Tenant views").
 */

/** The namespaces a caller may see; undefined sees every namespace. */
export type Scope = readonly string[] | undefined;

/** Addresses in free text (nmap's reason, a refusal): IPv4 and IPv6 literals. */
const ADDRESS = /\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b/gi;

export function hideAddresses(text: string): string {
  return text.replace(ADDRESS, '(address hidden)');
}

/**
 * Whether the scope may see a policy's name: one owned by its namespaces, or a
 * cluster-scoped one (its owner part is a kind: ClusterNetworkPolicy/…), which decides for
 * the caller's own pods too.
 */
export function visiblePolicy(policy: string | null | undefined, scope: Scope): boolean {
  if (!policy || scope === undefined) return true;
  const owner = policy.split('/')[0] ?? '';
  return /^[A-Z]/.test(owner) || scope.includes(owner);
}

const HIDDEN_POLICY = "(another tenant's policy)";

/** How a policy the scope may not name is shown: its namespace, which is visible anyway. */
export function hiddenPolicyName(policy: string): string {
  return `${policy.split('/')[0] ?? ''}/${HIDDEN_POLICY}`;
}

export function isHiddenPolicyName(policy: string): boolean {
  return policy.endsWith(`/${HIDDEN_POLICY}`);
}
