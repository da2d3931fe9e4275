import { stringify } from 'yaml';

/**
 * A kubeconfig for the lab's API emulator: its HTTPS URL on loopback, the certificate it
 * serves as the only trusted authority, and a bearer token.
 */
export function renderKubeconfig(
  name: string,
  server: string,
  token: string,
  caCertificate: string,
): string {
  const context = `lumen-lab-${name}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: context,
        cluster: {
          server,
          'certificate-authority-data': Buffer.from(caCertificate).toString('base64'),
        },
      },
    ],
    users: [{ name: context, user: { token } }],
    contexts: [
      { name: context, context: { cluster: context, user: context, namespace: 'default' } },
    ],
    'current-context': context,
  });
}
