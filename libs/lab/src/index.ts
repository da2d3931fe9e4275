export * from './naming.js';
export * from './lab.js';
export type { LabStatus, LabPodStatus } from './control.js';
export type { LabState } from './state.js';
export { LabClient, LabApiError } from './client.js';
export {
  FAULT_MODES,
  DETERMINISTIC_FAULTS,
  SERVICE_PATH_FAULTS,
  parseFault,
  formatFault,
  faultedCluster,
  faultedEvaluator,
  type Fault,
} from './enforcer/faults.js';
export { podManifest, scenarioObjects, type ManifestObject } from './objects.js';
export { POD_IP_ANNOTATION } from './runtime/kubelet.js';
export { resolveEnv, type SecretLookup } from './runtime/lumen-image.js';
export { HOST_PORTS_ANNOTATION } from './runtime/host-network.js';
export { neighbourLimitsFor, type NeighbourLimits } from './runtime/network.js';
// The API emulator alone, for benchmarks that serve a hollow cluster (no pods run).
export { ApiServer, ObjectStore } from './api/index.js';
export { resourceByKind } from './api/resources.js';
export { selfSignedCertificate } from './api/certificate.js';
export { renderKubeconfig } from './kubeconfig.js';
