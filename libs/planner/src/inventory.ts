import { POLICY_INVENTORY_PART_SIZE, type PolicyInventory } from '#lumen/contracts';
import type { PolicyEngine } from '#lumen/policy';

/**
 * The engine's valid policies with the rules that take effect, split into message parts,
 * in a stable order so that an unchanged cluster gives the same inventory.
 */
export function policyInventory(engine: PolicyEngine, generation: number): PolicyInventory[] {
  const policies = [...engine.policies]
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((p) => ({
      policy: p.key,
      ingress: p.rules.filter((r) => r.direction === 'ingress').map((r) => r.index),
      egress: p.rules.filter((r) => r.direction === 'egress').map((r) => r.index),
    }));
  const parts = Math.max(1, Math.ceil(policies.length / POLICY_INVENTORY_PART_SIZE));
  return Array.from({ length: parts }, (_, part) => ({
    generation,
    part,
    parts,
    policies: policies.slice(
      part * POLICY_INVENTORY_PART_SIZE,
      (part + 1) * POLICY_INVENTORY_PART_SIZE,
    ),
  }));
}
