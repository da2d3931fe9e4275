import { z } from 'zod';
import { SUBJECT_PREFIX, caseId, round, timestamp, type Contract } from '../common.js';

/** The scheduler could not give a case to any live prober: `lumen.v1.unschedulable`. */
export const CASE_UNSCHEDULABLE_SUBJECT = `${SUBJECT_PREFIX}.unschedulable`;

export const caseUnschedulableSchema = z.strictObject({
  caseId,
  round,
  attempt: z.number().int().min(1).max(100),
  reason: z.string().min(1).max(500),
  at: timestamp,
});

export type CaseUnschedulable = z.infer<typeof caseUnschedulableSchema>;

export const CaseUnschedulableContract: Contract<CaseUnschedulable> = {
  name: 'CaseUnschedulable',
  schema: caseUnschedulableSchema,
};
