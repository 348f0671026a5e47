// Regenerates docs/istio-fields.md from the schemas (@aviary/mesh-api) and the field registry
// (@aviary/mesh-validation). Usage: node tools/fields/generate.mjs
import { importTs, repoRoot } from '../build/import-ts.mjs';

const { writeFieldsDoc } = await importTs('tools/fields/generate.ts');
console.log(`wrote ${writeFieldsDoc(repoRoot)}`);
