import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

interface VolumeView {
  readonly name: string;
  readonly emptyDir?: object;
  readonly hostPath?: { readonly path: string };
  readonly persistentVolumeClaim?: { readonly claimName: string };
  readonly secret?: {
    readonly secretName?: string;
    readonly items?: readonly { readonly key: string; readonly path: string }[];
  };
  readonly configMap?: {
    readonly name?: string;
    readonly items?: readonly { readonly key: string; readonly path: string }[];
  };
  readonly projected?: {
    readonly sources?: readonly {
      readonly serviceAccountToken?: {
        readonly audience?: string;
        readonly expirationSeconds?: number;
        readonly path: string;
      };
    }[];
  };
}

export interface MountView {
  readonly name: string;
  readonly mountPath: string;
}

/** Where a pod's volumes come from: the API's Secrets and ConfigMaps, and its TokenRequest. */
export interface VolumeSources {
  secret(namespace: string, name: string): Readonly<Record<string, string>> | undefined;
  configMap(namespace: string, name: string): Readonly<Record<string, string>> | undefined;
  /** A token of the pod's ServiceAccount for `audience`, bound to the pod. */
  token(audience: string | undefined, expirationSeconds: number | undefined): string;
}

/** A volume's files: every key, or the items named, each at its path. */
function files(
  data: Readonly<Record<string, string>>,
  items: readonly { readonly key: string; readonly path: string }[] | undefined,
  what: string,
): [string, string][] {
  if (!items) return Object.entries(data);
  return items.map(({ key, path }) => {
    const value = data[key];
    if (value === undefined) throw new Error(`couldn't find key ${key} in ${what}`);
    return [path, value];
  });
}

function writeAll(dir: string, entries: readonly [string, string][]): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [path, value] of entries) {
    const file = normalize(join(dir, path));
    if (!file.startsWith(`${dir}/`))
      throw new Error(`a volume item's path leaves its volume: ${path}`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, value, { mode: 0o600 });
  }
}

/**
 * The lab has no container filesystems: each volume a Lumen container mounts is made a
 * directory on the host (Secret, ConfigMap and projected token files written out, an
 * emptyDir under the pod's own directory, a claim's under `claimsDir`, which outlives the
 * pod as a volume does), and the container's mount paths map to them. A missing Secret,
 * ConfigMap or key fails the pod, as the kubelet would.
 */
export function mountVolumes(
  pod: { readonly namespace: string; readonly volumes?: readonly VolumeView[] },
  mounts: readonly MountView[],
  dirs: { readonly podDir: string; readonly claimsDir: string },
  sources: VolumeSources,
): Map<string, string> {
  const hostPaths = new Map<string, string>();
  for (const mount of mounts) {
    const volume = pod.volumes?.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`volume ${mount.name} is mounted but not defined`);
    hostPaths.set(mount.mountPath, materialize(pod.namespace, volume, dirs, sources));
  }
  return hostPaths;
}

function materialize(
  namespace: string,
  volume: VolumeView,
  dirs: { readonly podDir: string; readonly claimsDir: string },
  sources: VolumeSources,
): string {
  const dir = join(dirs.podDir, volume.name);
  if (volume.hostPath) return volume.hostPath.path;
  if (volume.persistentVolumeClaim) {
    const claim = join(dirs.claimsDir, namespace, volume.persistentVolumeClaim.claimName);
    mkdirSync(claim, { recursive: true });
    return claim;
  }
  if (volume.emptyDir) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
    return dir;
  }
  if (volume.secret) {
    const name = volume.secret.secretName ?? '';
    const data = sources.secret(namespace, name);
    if (!data) throw new Error(`secret "${name}" not found in namespace ${namespace}`);
    writeAll(dir, files(data, volume.secret.items, `Secret ${namespace}/${name}`));
    return dir;
  }
  if (volume.configMap) {
    const name = volume.configMap.name ?? '';
    const data = sources.configMap(namespace, name);
    if (!data) throw new Error(`configmap "${name}" not found in namespace ${namespace}`);
    writeAll(dir, files(data, volume.configMap.items, `ConfigMap ${namespace}/${name}`));
    return dir;
  }
  if (volume.projected) {
    writeAll(
      dir,
      (volume.projected.sources ?? []).flatMap((source) =>
        source.serviceAccountToken
          ? [
              [
                source.serviceAccountToken.path,
                sources.token(
                  source.serviceAccountToken.audience,
                  source.serviceAccountToken.expirationSeconds,
                ),
              ] as [string, string],
            ]
          : [],
      ),
    );
    return dir;
  }
  throw new Error(
    `volume ${volume.name}: the lab mounts emptyDir, hostPath, persistentVolumeClaim, secret, configMap and projected tokens only`,
  );
}

/**
 * A container's environment with every path under a mount moved to where the lab put that
 * volume: `/var/lib/lumen/lumen.db` under the mount `/var/lib/lumen` becomes the claim's
 * directory and `lumen.db`. The longest mount path wins, as nested mounts do.
 */
export function mountedPaths(
  env: Readonly<Record<string, string>>,
  hostPaths: ReadonlyMap<string, string>,
): Record<string, string> {
  const mounts = [...hostPaths.entries()].sort((a, b) => b[0].length - a[0].length);
  return Object.fromEntries(
    Object.entries(env).map(([name, value]) => {
      const mount = mounts.find(([path]) => value === path || value.startsWith(`${path}/`));
      return [name, mount ? `${mount[1]}${value.slice(mount[0].length)}` : value];
    }),
  );
}

/** A container's arguments with the paths under a mount moved, as `mountedPaths` does. */
export function mountedArgs(
  args: readonly string[],
  hostPaths: ReadonlyMap<string, string>,
): string[] {
  const moved = mountedPaths(Object.fromEntries(args.map((a, i) => [String(i), a])), hostPaths);
  return args.map((_, i) => moved[String(i)] ?? '');
}
