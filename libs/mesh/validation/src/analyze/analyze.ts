import type { StoredObject } from '@aviary/mesh-api';
import { cmp, Findings, Snapshot, type AnalysisFinding, type AnalyzeOptions } from './model';
import {
  analyzeConflictingGateways,
  analyzeDestinationRuleHosts,
  analyzeDuplicateSubsets,
  analyzeMtlsConflicts,
  analyzeRateLimitTargets,
  analyzeServerCertVerification,
  analyzeSidecars,
} from './policy';
import { analyzeConflictingHosts, analyzeDelegates, analyzeDestinations, analyzeGatewayRefs, analyzeUnreachableRules } from './routing';
import { analyzeAnnotations } from './annotations';
import { analyzePortNames, analyzeServiceEntryAddresses } from './services';
import { analyzeWorkloadRefs } from './workloads';

const analyzers = [
  analyzeGatewayRefs,
  analyzeDelegates,
  analyzeDestinations,
  analyzeConflictingHosts,
  analyzeUnreachableRules,
  analyzeDestinationRuleHosts,
  analyzeDuplicateSubsets,
  analyzeMtlsConflicts,
  analyzeServerCertVerification,
  analyzeConflictingGateways,
  analyzeSidecars,
  analyzeRateLimitTargets,
  analyzeServiceEntryAddresses,
  analyzePortNames,
  analyzeAnnotations,
  analyzeWorkloadRefs,
];

/**
 * Cross-resource analysis of a set of (individually valid) resources, after Istio's analyzers.
 * Pure and deterministic: the same resources in any order give the same findings in the same order
 * (sorted by code, primary resource, path, message).
 */
export function analyze(resources: readonly StoredObject[], options: AnalyzeOptions = {}): AnalysisFinding[] {
  const snapshot = new Snapshot(resources, options);
  const findings = new Findings();
  for (const run of analyzers) run(snapshot, findings);
  return findings.list.sort(
    (a, b) => cmp(a.code, b.code) || cmp(a.resources[0] ?? '', b.resources[0] ?? '') || cmp(a.path ?? '', b.path ?? '') || cmp(a.message, b.message),
  );
}
