/**
 * Entry point bundled by generate.mjs (`node tools/fields/generate.mjs`). The logic lives in
 * ./fields so that tests can import it without colliding with the `.mjs` runner of the same base name.
 */
export { writeFieldsDoc, renderFieldsDoc, FIELDS_DOC } from './fields';
