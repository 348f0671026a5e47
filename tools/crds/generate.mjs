// Regenerates charts/aviary/crds from @aviary/mesh-api. Usage: node tools/crds/generate.mjs
import { importTs, repoRoot } from '../build/import-ts.mjs';

const { writeCrds } = await importTs('tools/crds/generate.ts');
for (const file of writeCrds(repoRoot)) console.log(`wrote ${file}`);
