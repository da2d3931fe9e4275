export * from './naming.js';
export * from './lab.js';
export type { LabStatus, LabPodStatus } from './control.js';
export type { LabState } from './state.js';
export { LabClient, LabApiError } from './client.js';
export {
  FAULT_MODES,
  DETERMINISTIC_FAULTS,
  parseFault,
  formatFault,
  faultedCluster,
  type Fault,
} from './enforcer/faults.js';
export { scenarioObjects, type ManifestObject } from './objects.js';
export { POD_IP_ANNOTATION } from './runtime/kubelet.js';
export { neighbourLimitsFor, type NeighbourLimits } from './runtime/network.js';
