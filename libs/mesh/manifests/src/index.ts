export { parseManifests, maxReportedProblems } from './parse';
export type { ManifestDocument, ManifestProblem, ParseResult } from './parse';
export { defaultManifestLimits } from './limits';
export type { LimitName, ManifestLimits } from './limits';
