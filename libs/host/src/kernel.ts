import { existsSync } from 'node:fs';

/**
 * Whether this kernel speaks SCTP. Without it no SCTP listener can exist and an SCTP
 * probe proves nothing, so SCTP cases are reported as unsupported, never as passed.
 */
export function kernelSupportsSctp(): boolean {
  return existsSync('/proc/net/sctp');
}
