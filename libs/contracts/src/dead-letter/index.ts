import { z } from 'zod';
import { SUBJECT_PREFIX, timestamp, type Contract } from '../common.js';

/** Messages no service could use, with the reason: `lumen.v1.dead`. */
export const DEAD_LETTER_SUBJECT = `${SUBJECT_PREFIX}.dead`;

export const deadLetterSchema = z.strictObject({
  /** Where the message arrived. */
  subject: z.string().min(1).max(256),
  /** The service that gave up on it. */
  service: z.string().min(1).max(64),
  reason: z.string().min(1).max(2000),
  receivedAt: timestamp,
  deliveries: z.number().int().min(1),
  /** The message as received, base64, cut at 64 KiB. */
  payload: z.string().max(90_000),
  truncated: z.boolean(),
});

export type DeadLetter = z.infer<typeof deadLetterSchema>;

export const DeadLetterContract: Contract<DeadLetter> = {
  name: 'DeadLetter',
  schema: deadLetterSchema,
};
