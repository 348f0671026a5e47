import { validate } from '@aviary/mesh-validation';

export interface ValidationFinding {
  readonly path: string;
  readonly message: string;
}

/** The port /validate depends on; @aviary/mesh-validation's `validate` is the implementation. */
export interface MeshValidator {
  validate(resource: unknown): { errors: readonly ValidationFinding[]; warnings: readonly ValidationFinding[] };
}

/** The same validation library as pilot's REST API and the CLI. */
export const meshValidator: MeshValidator = { validate };
