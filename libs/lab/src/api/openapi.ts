import { RESOURCE_TYPES, type ResourceType } from './resources.js';

/**
 * A minimal OpenAPI v3 description: enough for kubectl to see which operations exist and
 * that the server validates fields itself (`fieldValidation`), so `kubectl apply` needs
 * no client-side schemas. It carries no object schemas.
 */
function groupPath(type: ResourceType): string {
  return type.group ? `apis/${type.group}/${type.version}` : `api/${type.version}`;
}

export function openApiIndex(): unknown {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const type of RESOURCE_TYPES)
    paths[groupPath(type)] = { serverRelativeURL: `/openapi/v3/${groupPath(type)}?hash=lumen-lab` };
  return { paths };
}

export function openApiGroup(path: string): unknown {
  const types = RESOURCE_TYPES.filter((t) => groupPath(t) === path);
  if (types.length === 0) return undefined;
  const fieldValidation = {
    name: 'fieldValidation',
    in: 'query',
    schema: { type: 'string', uniqueItems: true },
  };
  const paths: Record<string, unknown> = {};
  for (const type of types) {
    const gvk = {
      'x-kubernetes-group-version-kind': {
        group: type.group,
        version: type.version,
        kind: type.kind,
      },
    };
    const base = `/${path}${type.namespaced ? '/namespaces/{namespace}' : ''}/${type.plural}`;
    paths[base] = { post: { ...gvk, parameters: [fieldValidation] }, get: { ...gvk } };
    paths[`${base}/{name}`] = {
      get: { ...gvk },
      put: { ...gvk, parameters: [fieldValidation] },
      patch: { ...gvk, parameters: [fieldValidation] },
      delete: { ...gvk },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Lumen lab API emulator', version: 'v1.34.0-lumen-lab' },
    paths,
    components: { schemas: {} },
  };
}
