/**
 * Every boundary where Lumen parses outside input, as fuzz targets (issue 16): the bus's
 * contract decoders, the scenario and manifest loader, the policy validators, nmap's XML,
 * the API's query and cursor parsers, and the receiver and token files. Each target says
 * what an input may do: be accepted, or be refused with the boundary's own error, whose
 * message names what is wrong. Any other throw is a crash, and fails the run; so does a
 * hang, by the caller's timeout. The suite runs each with a fixed seed
 * (libs/testing/test/fuzz.spec.ts); `npm run fuzz` runs them longer with a fresh one.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { ApiTokens, TokensError } from '#lumen/access';
import { ReceiversError, parseReceivers } from '#lumen/alerting';
import {
  API_ROUTES,
  CaseUnschedulableContract,
  CellBlockContract,
  CellMismatchContract,
  CursorError,
  DeadLetterContract,
  MatrixCoverageContract,
  PolicyInventoryContract,
  ProbeBatchContract,
  ProbeResultContract,
  ProberHeartbeatContract,
  ReprobeRequestContract,
  TestCaseContract,
  decode,
  decodePageCursor,
  encodePageCursor,
  type ApiRoute,
  type Contract,
} from '#lumen/contracts';
import { validateClusterPolicy, validatePolicy, type NetworkPolicy } from '#lumen/policy';
import { NmapOutputError, parseNmapXml } from '#lumen/prober';
import { ApiProblem, boundedQuery } from '#lumen/reporter';
import { InputError, parseInput } from '#lumen/scenario';
import { batchAnsweredBy, probeResultFixture } from './dispatch.js';
import { repositoryRoot } from './root.js';

/** What one input did at a boundary. */
export type FuzzOutcome = 'accepted' | 'refused';

export interface FuzzTarget {
  readonly name: string;
  readonly input: fc.Arbitrary<unknown>;
  /** Runs the boundary on one input; throws FuzzCrash for anything but accept or refuse. */
  readonly check: (input: unknown) => FuzzOutcome;
}

/** An input that the boundary did not handle as its contract says. */
export class FuzzCrash extends Error {}

/** A refusal must be the boundary's own error and say, in words, what is wrong. */
function refusedWith(
  error: unknown,
  kinds: readonly (abstract new (...args: never[]) => Error)[],
  mention?: string,
): FuzzOutcome {
  if (!kinds.some((kind) => error instanceof kind))
    throw new FuzzCrash(
      `crashed with ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`,
    );
  const message = (error as Error).message;
  if (message.trim().length < 5)
    throw new FuzzCrash(`refused without a reason: ${JSON.stringify(message)}`);
  if (mention && !message.includes(mention))
    throw new FuzzCrash(`refused without naming ${mention}: ${message}`);
  return 'refused';
}

/** A value anywhere in a document replaced by arbitrary JSON: the shape of a near-valid input. */
function mutated(sample: unknown): fc.Arbitrary<unknown> {
  const paths: (string | number)[][] = [];
  const walk = (value: unknown, path: (string | number)[]): void => {
    paths.push(path);
    if (Array.isArray(value))
      value.forEach((v, i) => {
        walk(v, [...path, i]);
      });
    else if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(sample, []);
  return fc
    .tuple(fc.constantFrom(...paths), fc.oneof(fc.jsonValue(), fc.constant(undefined)))
    .map(([path, replacement]) => {
      if (path.length === 0) return replacement;
      const copy = structuredClone(sample) as Record<string | number, unknown>;
      let at = copy;
      for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
      const last = path[path.length - 1] ?? '';
      // A dropped field: the copy without it (no delete of a computed key).
      if (replacement === undefined && !Array.isArray(at))
        return replaceAt(copy, path, (parent) =>
          Object.fromEntries(Object.entries(parent).filter(([k]) => k !== String(last))),
        );
      at[last] = replacement;
      return copy;
    });
}

/** The document with the object at `path`'s parent replaced by `change(parent)`. */
function replaceAt(
  document: Record<string | number, unknown>,
  path: readonly (string | number)[],
  change: (parent: Record<string, unknown>) => Record<string, unknown>,
): unknown {
  if (path.length === 1) return change(document);
  const [head = '', ...rest] = path;
  return {
    ...document,
    [head]: replaceAt(document[head] as Record<string | number, unknown>, rest, change),
  };
}

const text = (sample: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.string({ maxLength: 400 }),
    // Cut, spliced and duplicated real input: where parsers meet almost-valid text.
    fc
      .tuple(fc.nat(sample.length), fc.nat(sample.length), fc.string({ maxLength: 40 }))
      .map(
        ([a, b, insert]) => sample.slice(0, Math.min(a, b)) + insert + sample.slice(Math.max(a, b)),
      ),
    fc.nat(sample.length).map((cut) => sample.slice(0, cut)),
  );

const CONTRACTS: readonly Contract<unknown>[] = [
  TestCaseContract,
  ProbeBatchContract,
  ProbeResultContract,
  DeadLetterContract,
  ProberHeartbeatContract,
  ReprobeRequestContract,
  CaseUnschedulableContract,
  PolicyInventoryContract,
  MatrixCoverageContract,
  CellBlockContract,
  CellMismatchContract,
] as readonly Contract<unknown>[];

/** A prober's answer to its batch (batchAnsweredBy gives the batch), for the samples below. */
const RESULT_SAMPLE = probeResultFixture();

/** Valid messages of the contracts a prober sends or reads, for near-valid mutations. */
const MESSAGE_SAMPLES: readonly [Contract<unknown>, unknown][] = [
  [ProbeBatchContract, batchAnsweredBy(RESULT_SAMPLE)],
  [ProbeResultContract, { ...RESULT_SAMPLE, batchSequence: 7 }],
  [
    ProberHeartbeatContract,
    {
      node: 'node-a',
      instance: 'i-1',
      version: '0.1.0',
      at: '2026-12-02T10:00:00.000Z',
      inFlight: 0,
    },
  ],
];

const NMAP_SAMPLE = `<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -sS -Pn -n -p T:80 -oX - 10.244.1.2" start="1764130000" version="7.93" xmloutputversion="1.05">
<host><status state="up" reason="user-set"/><address addr="10.244.1.2" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/></port></ports></host>
<runstats><finished time="1764130001" summary="done" elapsed="1.23" exit="success"/></runstats>
</nmaprun>`;

const RECEIVERS_SAMPLE = `receivers:
  - name: ops
    type: webhook
    url: https://hooks.example.com/lumen
    secret: 0123456789abcdef0123
    namespaces: [tenant-a]
  - name: chat
    type: slack
    url: https://hooks.slack.com/services/T/B/X
`;

const TOKENS_SAMPLE = `tokens:
  - name: admin
    token: admin-token-0123456789abcdef
  - name: team-a
    token: team-a-token-0123456789abcdef
    namespaces: [tenant-a]
`;

/** The repository's own scenario of the tiers, and a recipe: near-valid inputs start here. */
function sampleScenarios(root: string): string[] {
  return [
    join(root, 'examples', 'tiers', 'tenant-isolation-cnp.yaml'),
    join(
      root,
      'examples',
      'recipes',
      'recipe-07-allow-traffic-from-some-pods-in-another-namespace.yaml',
    ),
  ].map((file) => readFileSync(file, 'utf8'));
}

/** The targets; `root` is the checkout whose examples seed the near-valid inputs. */
export function fuzzTargets(root: string = repositoryRoot): FuzzTarget[] {
  const scenarios = sampleScenarios(root);
  const scenarioDocuments = scenarios.map(
    (s) => parseDocument(s).toJS() as Record<string, unknown>,
  );
  const policies = scenarioDocuments.flatMap(
    (d) => (d.policies as Record<string, unknown>[] | undefined) ?? [],
  );
  const networkPolicies = policies.filter((p) => p.kind === 'NetworkPolicy');
  const clusterPolicies = policies.filter((p) => p.kind === 'ClusterNetworkPolicy');
  return [
    {
      name: 'contract decoders',
      input: fc.oneof(
        fc.tuple(
          fc.constantFrom(...CONTRACTS),
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            fc.jsonValue().map((v) => JSON.stringify(v)),
            fc.object().map((v) => JSON.stringify(v)),
          ),
        ),
        ...MESSAGE_SAMPLES.map(([contract, sample]) =>
          fc.tuple(
            fc.constant(contract),
            fc.oneof(fc.constant(sample), mutated(sample)).map((v) => JSON.stringify(v)),
          ),
        ),
      ),
      check: (input) => {
        const [contract, data] = input as [Contract<unknown>, Uint8Array | string];
        let decoded;
        try {
          decoded = decode(contract, data);
        } catch (error) {
          throw new FuzzCrash(`${contract.name}: decode threw ${String(error)}`);
        }
        if (decoded.ok) return 'accepted';
        if (
          !decoded.reason.startsWith(`${contract.name}: `) ||
          decoded.reason.length <= contract.name.length + 3
        )
          throw new FuzzCrash(`${contract.name}: refused without a reason: ${decoded.reason}`);
        return 'refused';
      },
    },
    {
      name: 'scenario and manifest loader',
      input: fc.oneof(
        ...scenarios.map(text),
        ...scenarioDocuments.map((d) => mutated(d).map((v) => stringify(v))),
        fc.jsonValue().map((v) => stringify(v)),
      ),
      check: (input) => {
        try {
          parseInput(input as string, 'fuzz.yaml');
          return 'accepted';
        } catch (error) {
          return refusedWith(error, [InputError], 'fuzz.yaml');
        }
      },
    },
    {
      name: 'policy validators',
      input: fc.oneof(
        ...networkPolicies.map((p) => mutated(p).map((v) => ({ kind: 'NetworkPolicy', value: v }))),
        ...clusterPolicies.map((p) =>
          mutated(p).map((v) => ({ kind: 'ClusterNetworkPolicy', value: v })),
        ),
        fc.object().map((v) => ({
          kind: 'NetworkPolicy',
          value: { metadata: { name: 'x', namespace: 'y' }, spec: v },
        })),
        fc.object().map((v) => ({
          kind: 'ClusterNetworkPolicy',
          value: { kind: 'ClusterNetworkPolicy', metadata: { name: 'x' }, spec: v },
        })),
      ),
      check: (input) => {
        const { kind, value } = input as { kind: string; value: unknown };
        // The loader only hands the validators objects with metadata; the rest is theirs.
        const manifest = value as { metadata?: unknown } | null;
        if (
          manifest === null ||
          typeof manifest !== 'object' ||
          !manifest.metadata ||
          typeof manifest.metadata !== 'object'
        )
          return 'refused';
        const result =
          kind === 'NetworkPolicy'
            ? validatePolicy(value as NetworkPolicy)
            : validateClusterPolicy(value as Parameters<typeof validateClusterPolicy>[0]);
        if (result.ok) return 'accepted';
        for (const problem of result.errors)
          if (typeof problem.field !== 'string' || !problem.message)
            throw new FuzzCrash(
              `a validation error names no field or reason: ${JSON.stringify(problem)}`,
            );
        return 'refused';
      },
    },
    {
      name: 'nmap XML parser',
      input: text(NMAP_SAMPLE),
      check: (input) => {
        try {
          parseNmapXml(input as string);
          return 'accepted';
        } catch (error) {
          return refusedWith(error, [NmapOutputError]);
        }
      },
    },
    {
      name: 'API query and cursor parsers',
      input: fc.oneof(
        fc.tuple(
          fc.constantFrom(...Object.keys(API_ROUTES)),
          fc.dictionary(
            fc.oneof(
              fc.constantFrom('limit', 'cursor', 'namespace', 'policy', 'outcome', 'since', 'kind'),
              fc.string(),
            ),
            fc.oneof(
              fc.string(),
              fc.array(fc.string(), { maxLength: 3 }),
              fc.object({ maxDepth: 1 }),
            ),
            { maxKeys: 14 },
          ),
        ),
        fc.tuple(
          fc.constant('cursor'),
          fc.oneof(
            fc.string(),
            fc.string().map((k) => encodePageCursor('o', k)),
            fc.base64String(),
          ),
        ),
      ),
      check: (input) => {
        const [route, value] = input as [string, unknown];
        if (route === 'cursor') {
          try {
            decodePageCursor(value as string, 'o');
            return 'accepted';
          } catch (error) {
            return refusedWith(error, [CursorError]);
          }
        }
        try {
          const query = boundedQuery(value);
          const schema = (API_ROUTES[route as keyof typeof API_ROUTES] as ApiRoute).query;
          // A route without parameters takes none: any given is refused by the API.
          if (!schema) return Object.keys(query).length === 0 ? 'accepted' : 'refused';
          return schema.safeParse(query).success ? 'accepted' : 'refused';
        } catch (error) {
          return refusedWith(error, [ApiProblem]);
        }
      },
    },
    {
      name: 'receiver and token files',
      input: fc.oneof(
        fc.tuple(fc.constant('receivers'), text(RECEIVERS_SAMPLE)),
        fc.tuple(fc.constant('tokens'), text(TOKENS_SAMPLE)),
        fc.tuple(
          fc.constant('receivers'),
          mutated(parseDocument(RECEIVERS_SAMPLE).toJS()).map((v) => stringify(v)),
        ),
        fc.tuple(
          fc.constant('tokens'),
          mutated(parseDocument(TOKENS_SAMPLE).toJS()).map((v) => stringify(v)),
        ),
      ),
      check: (input) => {
        const [file, content] = input as [string, string];
        try {
          if (file === 'receivers') parseReceivers(content, 'receivers.yaml');
          else ApiTokens.parse(content, 'tokens.yaml');
          return 'accepted';
        } catch (error) {
          return refusedWith(error, [ReceiversError, TokensError], `${file}.yaml`);
        }
      },
    },
  ];
}

/** Runs a target and returns its tally, or throws with the first crash, shrunk, and its seed. */
export function runFuzzTarget(
  target: FuzzTarget,
  options: { readonly seed: number; readonly numRuns: number },
): { readonly accepted: number; readonly refused: number } {
  const tally = { accepted: 0, refused: 0 };
  const details = fc.check(
    fc.property(target.input, (input) => {
      tally[target.check(input)] += 1;
    }),
    { seed: options.seed, numRuns: options.numRuns },
  );
  if (details.failed) {
    const error = details.errorInstance;
    throw new FuzzCrash(
      `${target.name}: ${error instanceof Error ? error.message : String(error)}\n` +
        `  input: ${JSON.stringify(details.counterexample?.[0])}\n` +
        `  replay: seed ${options.seed}, path ${details.counterexamplePath ?? ''}`,
    );
  }
  return tally;
}
