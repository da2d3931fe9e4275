import { z } from 'zod';
import { SUBJECT_PREFIX, type Contract } from '../common.js';

/**
 * The planner's list of policies and how many rules each has: `lumen.v1.policies`. The
 * reporter needs it for rule coverage, since a rule no pod matches has no case at all.
 */
export const POLICY_INVENTORY_SUBJECT = `${SUBJECT_PREFIX}.policies`;

/** Policies per message: a large cluster's inventory is split into parts. */
export const POLICY_INVENTORY_PART_SIZE = 1000;

export const policyInventorySchema = z.strictObject({
  generation: z.number().int().min(0),
  /** 0-based part of `parts`; a generation is complete when every part arrived. */
  part: z.number().int().min(0).max(10_000),
  parts: z.number().int().min(1).max(10_001),
  policies: z
    .array(
      z.strictObject({
        /** "namespace/name". */
        policy: z.string().min(3).max(507),
        /** Indices of the rules that take effect, per direction (as in a case's rule). */
        ingress: z.array(z.number().int().min(0)).max(1000),
        egress: z.array(z.number().int().min(0)).max(1000),
      }),
    )
    .max(POLICY_INVENTORY_PART_SIZE),
});

export type PolicyInventory = z.infer<typeof policyInventorySchema>;

export const PolicyInventoryContract: Contract<PolicyInventory> = {
  name: 'PolicyInventory',
  schema: policyInventorySchema,
};
