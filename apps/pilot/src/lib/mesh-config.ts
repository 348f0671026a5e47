import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { AviaryError } from '@aviary/errors';
import type { MeshConfig } from '@aviary/mesh-api';
import { validateMeshConfig } from '@aviary/mesh-validation';

/** Largest MeshConfig file pilot reads (bytes). */
const MAX_MESH_CONFIG_BYTES = 1024 * 1024;

/**
 * Reads and validates the MeshConfig file (YAML or JSON) at boot; '' means none. Any error
 * (unreadable, too large, not YAML, a field Aviary does not support) stops pilot with the
 * field path, rather than running with part of the config ignored.
 */
export function loadMeshConfig(file: string): MeshConfig {
  if (file === '') return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AviaryError('INVALID_ARGUMENT', 'MESH_CONFIG_UNREADABLE', `cannot read mesh config ${file}: ${(cause as Error).message}`, { file }, { cause });
  }
  if (Buffer.byteLength(text) > MAX_MESH_CONFIG_BYTES) throw new AviaryError('INVALID_ARGUMENT', 'MESH_CONFIG_INVALID', `mesh config ${file} is larger than ${MAX_MESH_CONFIG_BYTES} bytes`, { file });
  let value: unknown;
  try {
    value = parse(text, { maxAliasCount: 100 }) ?? {};
  } catch (cause) {
    throw new AviaryError('INVALID_ARGUMENT', 'MESH_CONFIG_INVALID', `mesh config ${file} is not YAML: ${(cause as Error).message}`, { file }, { cause });
  }
  const { errors } = validateMeshConfig(value);
  if (errors.length > 0) {
    const detail = errors.map((e) => `${e.path === '' ? '(root)' : e.path}: ${e.message}`).join('; ');
    throw new AviaryError('INVALID_ARGUMENT', 'MESH_CONFIG_INVALID', `mesh config ${file}: ${detail}`, { file, errors });
  }
  return value as MeshConfig;
}
