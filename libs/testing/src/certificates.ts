import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** PEM files of a certificate and its key, as a test made them. */
export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA for two days, written to `<dir>/<name>.crt` and `.key`. */
export function makeTestCa(dir: string, name: string): TestCertificate {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    files.key,
    '-out',
    files.cert,
  );
  return files;
}

/**
 * A server certificate signed by `ca`, for the given DNS names and IP addresses, written to
 * `<dir>/<name>.crt` and `.key`.
 */
export function makeServerCertificate(
  dir: string,
  name: string,
  ca: TestCertificate,
  names: { readonly dns?: readonly string[]; readonly ips?: readonly string[] },
): TestCertificate {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const alternatives = [
    ...(names.dns ?? []).map((d) => `DNS:${d}`),
    ...(names.ips ?? []).map((ip) => `IP:${ip}`),
  ];
  const extensions = join(dir, `${name}.ext`);
  writeFileSync(extensions, `subjectAltName=${alternatives.join(',')}\n`);
  const request = join(dir, `${name}.csr`);
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    files.key,
    '-out',
    request,
  );
  openssl(
    'x509',
    '-req',
    '-in',
    request,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    extensions,
    '-out',
    files.cert,
  );
  return files;
}
