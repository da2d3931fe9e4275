import { fork } from 'node:child_process';
import type dgram from 'node:dgram';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Protocol } from '#lumen/policy';

export interface ListenerSpec {
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
}

export type Listener = net.Server | dgram.Socket;

/** What a UDP listener answers, so that an allowed UDP probe sees a reply. */
export const UDP_REPLY = Buffer.from('lumen-lab\n');

/** SCTP needs kernel support these machines lack; such ports get no listener. */
export function listenable(ports: readonly { port: number; protocol: Protocol }[]): ListenerSpec[] {
  const unique = new Map<string, ListenerSpec>();
  for (const { port, protocol } of ports) {
    if (protocol !== 'SCTP') unique.set(`${port}/${protocol}`, { port, protocol });
  }
  return [...unique.values()];
}

/**
 * Opens TCP and UDP listeners inside a network namespace and serves them from this
 * process: a helper started through nsenter creates the sockets there and passes them
 * over IPC. TCP connections are accepted and closed; every UDP datagram is answered.
 */
export function openListeners(
  netnsPath: string,
  specs: readonly ListenerSpec[],
): Promise<Listener[]> {
  if (specs.length === 0) return Promise.resolve([]);
  const helper = fileURLToPath(new URL('./listener-helper.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const listeners: Listener[] = [];
    let settled = false;
    let stderr = '';
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      closeListeners(listeners);
      reject(new Error(`listeners in ${netnsPath} failed: ${reason}`));
    };
    const child = fork(helper, [JSON.stringify(specs)], {
      execPath: 'nsenter',
      execArgv: [`--net=${netnsPath}`, process.execPath],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // Done when every socket has arrived: the helper may exit before its last message
    // has been read here, so its exit alone says nothing.
    child.on('message', (message: { error?: string; protocol?: string }, handle) => {
      if (message.error) {
        fail(message.error);
        return;
      }
      listeners.push(
        message.protocol === 'TCP'
          ? serveTcp(handle as net.Server)
          : serveUdp(handle as dgram.Socket),
      );
      if (listeners.length === specs.length && !settled) {
        settled = true;
        resolve(listeners);
      }
    });
    child.on('error', (error) => {
      fail(error.message);
    });
    child.on('exit', (code) => {
      if (code !== 0) fail(stderr.trim() || `helper exited with ${String(code)}`);
      // A clean exit with sockets still in flight: give the channel a moment to deliver.
      else
        setTimeout(() => {
          fail(`the helper handed over ${listeners.length} of ${specs.length} sockets`);
        }, 5000).unref();
    });
  });
}

function serveTcp(server: net.Server): net.Server {
  server.on('connection', (socket) => {
    socket.on('error', () => socket.destroy());
    socket.end('lumen-lab\n');
  });
  return server;
}

function serveUdp(socket: dgram.Socket): dgram.Socket {
  socket.on('message', (_message, remote) => {
    socket.send(UDP_REPLY, remote.port, remote.address);
  });
  socket.on('error', () => undefined);
  return socket;
}

export function closeListeners(listeners: readonly Listener[]): void {
  for (const listener of listeners) {
    try {
      listener.close();
    } catch {
      // Already closed: nothing left to release.
    }
  }
}
