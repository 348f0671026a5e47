/**
 * Entry point bundled by generate.mjs (`node tools/crds/generate.mjs`). The logic lives in ./crds so
 * that tests can import it without colliding with the `.mjs` runner of the same base name.
 */
export { writeCrds, renderCrds, CRDS_DIR } from './crds';
