import { resolveEnv } from '#lumen/lab';
import type { RenderedObject } from './tools.js';

/** What a container's environment is resolved against, beside the rendered Secrets. */
export interface PodContext {
  readonly podName: string;
  readonly namespace: string;
  readonly nodeName?: string;
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
 * The environment the kubelet gives a container of a rendered workload, as the lab's
 * kubelet resolves it (resolveEnv): Secret keys come from the rendered Secrets, or from
 * `context.secrets` for those the chart does not render.
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
    | {
        template?: {
          spec?: { containers?: { name: string; env?: Parameters<typeof resolveEnv>[0] }[] };
        };
      }
    | undefined;
  const env = pod?.template?.spec?.containers?.find((c) => c.name === container)?.env;
  if (!env) throw new Error(`${workload.kind} ${workload.name} has no container ${container}`);
  return resolveEnv(
    env,
    { nodeName: context.nodeName ?? '', namespace: context.namespace, name: context.podName },
    (namespace, name) => {
      const rendered = objects.find(
        (o) =>
          o.kind === 'Secret' &&
          o.metadata.name === name &&
          (o.metadata.namespace ?? namespace) === namespace,
      );
      return rendered ? secretData(rendered) : context.secrets?.[name];
    },
  );
}
