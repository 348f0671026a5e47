export { parseManifests, defaultManifestLimits } from './parse';
export type { ManifestDocument, ManifestLimits, ManifestProblem, ParseResult } from './parse';
