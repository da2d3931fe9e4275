import type { RenderedObject } from './tools.js';

/** One entry of a container's `env`, as a pod spec writes it. */
interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: {
    readonly secretKeyRef?: { readonly name: string; readonly key: string };
    readonly fieldRef?: { readonly fieldPath: string };
  };
}

/** What a container's environment is resolved against, beside the rendered Secrets. */
export interface PodContext {
  readonly podName: string;
  readonly namespace: string;
  /** Secrets the chart does not render (a hook Job's, an operator's): name → key → value. */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** A rendered Secret's data as text: stringData, and data decoded from base64. */
function secretData(object: RenderedObject): Record<string, string> {
  const data = Object.entries((object['data'] ?? {}) as Record<string, string>).map(
    ([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')],
  );
  const text = (object['stringData'] ?? {}) as Record<string, string>;
  return { ...(Object.fromEntries(data) as Record<string, string>), ...text };
}

/**
 * The environment the kubelet gives a container of a rendered workload: plain values,
 * Secret keys (from the rendered Secrets or `context.secrets`), the pod's name and
 * namespace, and `$(VAR)` references to variables defined before, which the kubelet expands
 * (`$$` escapes a `$`; an undefined reference stays as written). A missing Secret or key
 * throws, as the kubelet would refuse to start the container.
 */
export function containerEnvironment(
  objects: readonly RenderedObject[],
  workload: { readonly kind: string; readonly name: string },
  container: string,
  context: PodContext,
): Record<string, string> {
  const found = objects.find((o) => o.kind === workload.kind && o.metadata.name === workload.name);
  if (!found) throw new Error(`no ${workload.kind} ${workload.name} rendered`);
  const pod = found['spec'] as
    { template?: { spec?: { containers?: { name: string; env?: EnvVar[] }[] } } } | undefined;
  const env = pod?.template?.spec?.containers?.find((c) => c.name === container)?.env;
  if (!env) throw new Error(`${workload.kind} ${workload.name} has no container ${container}`);
  const secret = (name: string, key: string): string => {
    const rendered = objects.find((o) => o.kind === 'Secret' && o.metadata.name === name);
    const data = rendered ? secretData(rendered) : context.secrets?.[name];
    if (!data) throw new Error(`Secret ${name} not found`);
    const value = data[key];
    if (value === undefined) throw new Error(`Secret ${name} has no key ${key}`);
    return value;
  };
  const fields: Record<string, string> = {
    'metadata.name': context.podName,
    'metadata.namespace': context.namespace,
  };
  const resolved: Record<string, string> = {};
  for (const variable of env) {
    if (variable.valueFrom?.secretKeyRef) {
      const { name, key } = variable.valueFrom.secretKeyRef;
      resolved[variable.name] = secret(name, key);
    } else if (variable.valueFrom?.fieldRef) {
      const value = fields[variable.valueFrom.fieldRef.fieldPath];
      if (value === undefined)
        throw new Error(`fieldRef ${variable.valueFrom.fieldRef.fieldPath} is not known here`);
      resolved[variable.name] = value;
    } else {
      resolved[variable.name] = (variable.value ?? '').replace(
        /\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)/g,
        (whole, name: string | undefined) => (name === undefined ? '$' : (resolved[name] ?? whole)),
      );
    }
  }
  return resolved;
}
