/**
 * Runs inside a pod's network namespace (started through nsenter by the lab daemon),
 * opens the pod's TCP and UDP listeners there, hands each socket to the daemon over the
 * IPC channel, and exits. The sockets stay in the pod's namespace; the daemon serves them.
 */
import dgram from 'node:dgram';
import net from 'node:net';

interface ListenerSpec {
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
}

function send(message: object, handle: net.Server | dgram.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send?.(message, handle, {}, (error) => {
      if (error) reject(error);
      else resolve();
    });
  });
}

async function open(spec: ListenerSpec): Promise<void> {
  if (spec.protocol === 'TCP') {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: spec.port, host: '::', ipv6Only: false }, resolve);
    });
    await send(spec, server);
    return;
  }
  const socket = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(spec.port, '::', resolve);
  });
  await send(spec, socket);
}

const specs = JSON.parse(process.argv[2] ?? '[]') as ListenerSpec[];
try {
  for (const spec of specs) await open(spec);
  process.exit(0);
} catch (error) {
  process.send?.({ error: String(error) });
  process.exit(1);
}
