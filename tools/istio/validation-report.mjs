// Runs the differential test of Aviary's validator against `istioctl validate` over the corpus in
// e2e/istio-diff/corpus and writes docs/istio-validation.md. Builds istioctl first when needed
// (tools/istio/ensure-istiod.sh --istioctl). Exit 1 when a disagreement is unexplained.
// Usage: node tools/istio/validation-report.mjs
import { importTs, repoRoot } from '../build/import-ts.mjs';

const { writeValidationReport } = await importTs('e2e/istio-diff/report.ts');
const { path, unexplained } = await writeValidationReport(repoRoot);
console.log(`wrote ${path}${unexplained > 0 ? ` (${unexplained} unexplained disagreement(s), see above)` : ''}`);
process.exitCode = unexplained > 0 ? 1 : 0;
