import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '#lumen/host';

export interface ServingCertificate {
  readonly key: string;
  readonly cert: string;
}

/**
 * A self-signed serving certificate for 127.0.0.1, made with openssl. kubectl sends
 * bearer tokens only over TLS, so the emulator serves HTTPS and the kubeconfig trusts
 * exactly this certificate.
 */
export async function selfSignedCertificate(dir: string): Promise<ServingCertificate> {
  const keyFile = join(dir, 'apiserver.key');
  const certFile = join(dir, 'apiserver.crt');
  await runChecked('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '30',
    '-subj',
    '/CN=lumen-lab-apiserver',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
  ]);
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
}
