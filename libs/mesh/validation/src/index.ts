export { validate, isValidResource } from './validate';
export type { Finding, ValidationResult } from './finding';
export { analyze } from './analyze/analyze';
export { codes as analysisCodes } from './analyze/model';
export type { AnalysisFinding, AnalyzeOptions, Severity } from './analyze/model';
export { validateMeshConfig } from './rules/mesh-config';
export { fieldRegistry, istioKinds, ruleFor } from './fields/registry';
export type { FieldRule, FieldStatus, IstioKind, Refusal } from './fields/registry';
export { schemaPaths } from './fields/paths';
