import { CoreV1Api, makeInformer, type KubeConfig, type V1Node } from '@kubernetes/client-node';

/**
 * The cluster's nodes, kept current by an informer (list, then watch; relist after 410):
 * the prober reads their pod CIDRs and addresses from it. Needs get, list and watch on
 * nodes, nothing else.
 */
export class NodeWatcher {
  private readonly nodes = new Map<string, V1Node>();
  private stopped = false;
  private readonly informer;

  constructor(
    config: KubeConfig,
    private readonly options: {
      /** Every change, with all nodes as they are now. */
      readonly onChange?: (nodes: readonly V1Node[]) => void;
      readonly onError?: (error: unknown) => void;
    } = {},
  ) {
    const core = config.makeApiClient(CoreV1Api);
    this.informer = makeInformer(config, '/api/v1/nodes', () => core.listNode());
    const upsert = (node: V1Node): void => {
      this.nodes.set(node.metadata?.name ?? '', node);
      this.options.onChange?.(this.current());
    };
    this.informer.on('add', upsert);
    this.informer.on('update', upsert);
    this.informer.on('delete', (node) => {
      this.nodes.delete(node.metadata?.name ?? '');
      this.options.onChange?.(this.current());
    });
    this.informer.on('error', (error: unknown) => {
      if (this.stopped) return;
      this.options.onError?.(error);
      // client-node stops an informer on a non-410 error; start it again after a pause.
      setTimeout(() => {
        if (!this.stopped) void this.informer.start().catch(this.options.onError);
      }, 1000).unref();
    });
  }

  /** Lists the nodes (a failure here is the caller's: no rights, no API), then watches. */
  async start(): Promise<void> {
    await this.informer.start();
  }

  current(): V1Node[] {
    return [...this.nodes.values()];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }
}
