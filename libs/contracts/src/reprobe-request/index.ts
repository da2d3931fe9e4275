import { z } from 'zod';
import {
  SUBJECT_PREFIX,
  caseId,
  port,
  protocol,
  round,
  timestamp,
  type Contract,
} from '../common.js';
import { podEndpoint, servicePath } from '../test-case/index.js';

/** The reporter asks the scheduler to probe a case again: `lumen.v1.reprobes`. */
export const REPROBE_REQUEST_SUBJECT = `${SUBJECT_PREFIX}.reprobes`;

export const reprobeRequestSchema = z.strictObject({
  caseId,
  round,
  /** The attempt to make: 2 for the first re-probe. */
  attempt: z.number().int().min(2).max(100),
  /** Not before this time: the backoff, or the end of the settle window. */
  notBefore: timestamp,
  reason: z.string().max(300),
  // Everything the scheduler needs, so that it keeps no state of its own.
  sources: z.array(podEndpoint).max(20),
  destinations: z.array(podEndpoint).max(20),
  port,
  protocol,
  listenerKnown: z.boolean(),
  /** Through a Service: probed at its ClusterIP and port. */
  via: servicePath.optional(),
});

export type ReprobeRequest = z.infer<typeof reprobeRequestSchema>;

export const ReprobeRequestContract: Contract<ReprobeRequest> = {
  name: 'ReprobeRequest',
  schema: reprobeRequestSchema,
};
