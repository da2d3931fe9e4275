import { existsSync, openSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ContainerView {
  readonly image?: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: readonly {
    readonly name: string;
    readonly value?: string;
    readonly valueFrom?: {
      readonly fieldRef?: { readonly fieldPath?: string };
      readonly secretKeyRef?: { readonly name?: string; readonly key?: string };
    };
  }[];
}

/** A Secret's data in a namespace, decoded; undefined when there is no such Secret. */
export type SecretLookup = (
  namespace: string,
  name: string,
) => Readonly<Record<string, string>> | undefined;

/** Lumen's own image, by its name: `…/lumen:<tag>` or `lumen@sha256:…`. */
const LUMEN_IMAGE = /(^|\/)lumen([:@]|$)/;

/** The repository this lab runs from: dist/libs/lab/src/runtime → the root. */
const repository = normalize(
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..'),
);

export interface LumenProcess {
  readonly argv: readonly string[];
  readonly env: Record<string, string>;
}

/**
 * The lab has no container runtime. A pod whose container runs Lumen's image (the
 * DaemonSet `lumen run` creates, or the chart's) runs the same entrypoint from this
 * repository's build instead, with the container's environment: what the image would run.
 * Any other image stays a sleeper. The process runs in the host's network namespace,
 * because the lab's fabric never reaches the host where NATS runs; its HTTP port is
 * chosen free, as each real pod would have its own ports.
 */
export function lumenProcess(
  containers: readonly ContainerView[] | undefined,
  pod: { readonly nodeName: string; readonly namespace: string; readonly name: string },
  secret: SecretLookup,
): LumenProcess | undefined {
  const container = containers?.[0];
  if (!container?.image || !LUMEN_IMAGE.test(container.image)) return undefined;
  const [, script] = [...(container.command ?? []), ...(container.args ?? [])];
  // A service's entrypoint, or another of its scripts (the chart's hook Job runs the
  // scheduler's issuer-key.js).
  if (!script || !/^(\/app\/)?dist\/services\/[a-z]+\/src\/[a-z-]+\.js$/.test(script))
    return undefined;
  const entry = join(repository, script.replace(/^\/app\//, ''));
  if (!existsSync(entry))
    throw new Error(
      `the lab runs Lumen's image from the repository's build, and ${entry} is missing: run npm run build`,
    );
  return { argv: [process.execPath, entry], env: containerEnv(container, pod, secret) };
}

function containerEnv(
  container: ContainerView,
  pod: { readonly nodeName: string; readonly namespace: string; readonly name: string },
  secret: SecretLookup,
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    ...resolveEnv(container.env ?? [], pod, secret),
  };
}

/**
 * A container's environment as the kubelet resolves it: plain values, the pod's fields, a
 * Secret's keys (a missing Secret or key fails the container), and `$(VAR)` references to
 * variables defined before it, expanded (`$$` stands for `$`; an unknown reference stays as
 * written).
 */
export function resolveEnv(
  env: NonNullable<ContainerView['env']>,
  pod: { readonly nodeName: string; readonly namespace: string; readonly name: string },
  secret: SecretLookup,
): Record<string, string> {
  const fields: Record<string, string> = {
    'spec.nodeName': pod.nodeName,
    'metadata.namespace': pod.namespace,
    'metadata.name': pod.name,
  };
  const resolved: Record<string, string> = {};
  for (const variable of env) {
    const fromSecret = variable.valueFrom?.secretKeyRef;
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    const value = fromSecret
      ? secretValue(secret, pod.namespace, fromSecret)
      : fieldPath !== undefined
        ? fields[fieldPath]
        : (variable.value ?? '').replace(
            /\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)/g,
            (whole, name: string | undefined) =>
              name === undefined ? '$' : (resolved[name] ?? whole),
          );
    if (value !== undefined) resolved[variable.name] = value;
  }
  return resolved;
}

/** Where a Lumen process of a pod writes its output. */
export function processLog(stateDir: string, namespace: string, name: string): number {
  return openSync(join(stateDir, `pod-${namespace}_${name}.log`), 'a');
}

/** As the kubelet: a container whose Secret or key is missing does not start. */
function secretValue(
  secret: SecretLookup,
  namespace: string,
  ref: { readonly name?: string; readonly key?: string },
): string {
  const data = secret(namespace, ref.name ?? '');
  if (!data) throw new Error(`secret "${ref.name ?? ''}" not found in namespace ${namespace}`);
  const value = data[ref.key ?? ''];
  if (value === undefined)
    throw new Error(`couldn't find key ${ref.key ?? ''} in Secret ${namespace}/${ref.name ?? ''}`);
  return value;
}
