import type { Contract } from '#lumen/contracts';
import type { ConsumeOptions, PublishOptions } from '#lumen/messaging';

/** The part of the message bus the pipeline uses; MessageBus is the real one. */
export interface Publisher {
  publish<T>(
    subject: string,
    contract: Contract<T>,
    value: T,
    options?: PublishOptions,
  ): Promise<void>;
}

export interface Consumer {
  consume<T>(options: ConsumeOptions<T>): Promise<{ stop: () => Promise<void> }>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Structured log lines: a message and ids, never payloads. */
export interface PipelineLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export const silentLog: PipelineLog = { info: () => undefined, warn: () => undefined };

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
