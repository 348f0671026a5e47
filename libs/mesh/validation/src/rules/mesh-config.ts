import { envoyStatusCodes, MeshConfigSchema, type MeshConfig } from '@aviary/mesh-api';
import { Compile } from 'typebox/compile';
import { idx, key, Report, type ValidationResult } from '../finding';
import { reportSchemaError, type SchemaError } from '../schema-check';
import { checkDuration } from './checks';

const validator = Compile(MeshConfigSchema);

/**
 * Validates a MeshConfig document (the part Aviary reads): schema first (unknown fields are
 * errors, never ignored), then each extension provider: a unique name, exactly one provider
 * kind, a timeout that parses, an HTTP status code for `statusOnError`.
 */
export function validateMeshConfig(value: unknown): ValidationResult {
  const report = new Report();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    report.error('', 'mesh config must be an object');
    return report.result();
  }
  let count = 0;
  for (const e of validator.Errors(value) as unknown as SchemaError[]) count += reportSchemaError(value, e, report);
  if (count > 0) return report.result();
  const names = new Set<string>();
  ((value as MeshConfig).extensionProviders ?? []).forEach((p, i) => {
    const path = idx('extensionProviders', i);
    if (names.has(p.name)) report.error(key(path, 'name'), `duplicate extension provider name ${JSON.stringify(p.name)}`);
    names.add(p.name);
    const kinds = [p.envoyExtAuthzHttp && 'envoyExtAuthzHttp', p.envoyExtAuthzGrpc && 'envoyExtAuthzGrpc'].filter((k): k is string => typeof k === 'string');
    if (kinds.length !== 1) {
      report.error(path, `exactly one of envoyExtAuthzHttp or envoyExtAuthzGrpc must be set (the only provider kinds Aviary supports), got ${kinds.length}`);
      return;
    }
    const kind = kinds[0]!;
    const cfg = (p.envoyExtAuthzHttp ?? p.envoyExtAuthzGrpc)!;
    const cp = key(path, kind);
    checkDuration(report, key(cp, 'timeout'), cfg.timeout);
    if (cfg.statusOnError !== undefined && !Object.hasOwn(envoyStatusCodes, cfg.statusOnError)) report.error(key(cp, 'statusOnError'), `statusOnError ${JSON.stringify(cfg.statusOnError)} must be an HTTP status code Envoy knows`);
    const slash = cfg.service.indexOf('/');
    const host = slash < 0 ? cfg.service : cfg.service.slice(slash + 1);
    if (host === '' || host.includes('/')) report.error(key(cp, 'service'), `service ${JSON.stringify(cfg.service)} must be [<namespace>/]<hostname>`);
    if (p.envoyExtAuthzHttp?.pathPrefix !== undefined && !p.envoyExtAuthzHttp.pathPrefix.startsWith('/')) {
      report.error(key(cp, 'pathPrefix'), `pathPrefix ${JSON.stringify(p.envoyExtAuthzHttp.pathPrefix)} must start with /`);
    }
  });
  return report.result();
}
