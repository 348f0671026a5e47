import { describe, expect, it } from 'vitest';
import { validateMeshConfig } from './mesh-config';

const http = (extra: Record<string, unknown> = {}) => ({ name: 'authz', envoyExtAuthzHttp: { service: 'ext-authz.foo.svc.cluster.local', port: 8000, ...extra } });

describe('validateMeshConfig', () => {
  it('accepts HTTP and gRPC ext_authz providers', () => {
    const r = validateMeshConfig({
      extensionProviders: [
        http({ timeout: '0.5s', pathPrefix: '/check', includeRequestHeadersInCheck: ['x-ext-authz'], statusOnError: '503' }),
        { name: 'grpc', envoyExtAuthzGrpc: { service: 'foo/authz.foo.svc.cluster.local', port: 9000, failOpen: true } },
      ],
    });
    expect(r.errors).toEqual([]);
  });

  it.each([
    ['unknown top-level field', { defaultConfig: {} }, 'defaultConfig', 'unknown field'],
    ['unknown provider kind', { extensionProviders: [{ name: 'z', zipkin: { service: 'z', port: 9411 } }] }, 'extensionProviders[0].zipkin', 'unknown field'],
    ['no provider kind', { extensionProviders: [{ name: 'z' }] }, 'extensionProviders[0]', 'exactly one of'],
    ['duplicate name', { extensionProviders: [http(), http()] }, 'extensionProviders[1].name', 'duplicate'],
    ['bad timeout', { extensionProviders: [http({ timeout: 'soon' })] }, 'extensionProviders[0].envoyExtAuthzHttp.timeout', 'invalid duration'],
    ['bad status', { extensionProviders: [http({ statusOnError: 'nope' })] }, 'extensionProviders[0].envoyExtAuthzHttp.statusOnError', 'HTTP status'],
    ['bad path prefix', { extensionProviders: [http({ pathPrefix: 'check' })] }, 'extensionProviders[0].envoyExtAuthzHttp.pathPrefix', 'must start with /'],
    ['missing port', { extensionProviders: [{ name: 'a', envoyExtAuthzHttp: { service: 'a' } }] }, 'extensionProviders[0].envoyExtAuthzHttp.port', 'required'],
  ])('%s', (_what, value, path, message) => {
    const r = validateMeshConfig(value);
    expect(r.errors.map((e) => e.path)).toContain(path);
    expect(r.errors.find((e) => e.path === path)?.message).toContain(message);
  });

  it('refuses a non-object', () => {
    expect(validateMeshConfig([]).errors).toEqual([{ path: '', message: 'mesh config must be an object' }]);
  });
});
