// The architecture's dependency rules (ARCHITECTURE.md, STYLE.md), as @nx/enforce-module-boundaries
// options. eslint.config.mjs applies them; tools/lint/boundaries.spec.ts plants one violation of
// each rule and checks that the lint refuses it.
//
// Tags: every project has exactly one `type:*` tag; the xDS pipeline also has `layer:*` tags.
//   type:api        wire contracts (mesh-api, ca-api, xds-api): depend on no internal lib
//   type:util       pure helpers (errors, config, xds-protos); may read the wire contracts (type:api)
//   type:domain     pure domain logic: no transport, no metrics/logging libs
//   type:infra      process-level infrastructure (observability, nats-runner)
//   type:transport  adapters that do I/O (NATS, gRPC, HTTP, Kubernetes)
//   type:app        apps/*: wiring only; nothing imports an app
//   type:tooling    tools/* and e2e: may use any lib, never an app's src
//   type:testing    test helpers (real peers), for tests and tooling only
//   layer:model / layer:translate / layer:serve: source → model → translate → serve; the serving
//                   layer (xds-server, xds-cache) knows nothing of translation or the model, and
//                   translation returns plain resources without importing the serving layer
//                   (`translateImportPatterns`, per file: the shared test helpers may use the cache).

/** Transports that domain and util libraries must never import. */
export const transports = [
  'fastify', '@fastify/*', '@nats-io/*', '@grpc/*', '@kubernetes/*', 'undici',
  'node:net', 'node:http', 'node:https', 'node:http2', 'node:tls', 'node:dgram',
  'net', 'http', 'https', 'http2', 'tls', 'dgram',
];

/** Options for @nx/enforce-module-boundaries. Tests (and e2e) may also use the testing and infra libs. */
export function boundaries(forTests) {
  const extra = forTests ? ['type:testing', 'type:infra'] : [];
  const only = (...tags) => [...new Set([...tags, ...extra])];
  return {
    enforceBuildableLibDependency: false,
    allow: [],
    depConstraints: [
      { sourceTag: 'type:api', onlyDependOnLibsWithTags: only() },
      { sourceTag: 'type:app', onlyDependOnLibsWithTags: only('type:api', 'type:domain', 'type:util', 'type:infra', 'type:transport') },
      { sourceTag: 'type:transport', onlyDependOnLibsWithTags: only('type:api', 'type:domain', 'type:util', 'type:infra', 'type:transport') },
      { sourceTag: 'type:infra', onlyDependOnLibsWithTags: only('type:api', 'type:domain', 'type:util', 'type:infra'), bannedExternalImports: forTests ? [] : ['fastify', '@fastify/*', '@nats-io/*', '@grpc/*', '@kubernetes/*'] },
      { sourceTag: 'type:domain', onlyDependOnLibsWithTags: only('type:api', 'type:domain', 'type:util'), bannedExternalImports: forTests ? [] : [...transports, 'pino', 'prom-client', '@opentelemetry/*'] },
      { sourceTag: 'type:util', onlyDependOnLibsWithTags: only('type:api', 'type:util'), bannedExternalImports: forTests ? [] : [...transports, 'prom-client', '@opentelemetry/*'] },
      { sourceTag: 'type:tooling', onlyDependOnLibsWithTags: only('type:api', 'type:domain', 'type:util', 'type:infra', 'type:transport') },
      { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:api', 'type:domain', 'type:util', 'type:infra', 'type:transport', 'type:testing'] },
      { sourceTag: 'layer:serve', notDependOnLibsWithTags: ['layer:translate', 'layer:model'] },
      { sourceTag: 'layer:model', notDependOnLibsWithTags: ['layer:translate', 'layer:serve'] },
    ],
  };
}

/** Files held to the test rules (tests, their helpers, e2e suites and their support code). */
export const testFiles = ['**/*.spec.ts', '**/*.test-helper.ts', '**/src/testing/**/*.ts', 'e2e/**/*.ts'];

/** A library is imported through its package index, never its src/. */
export const deepImportPatterns = [{ group: ['@aviary/*/src/*', '**/libs/**/src/*'], message: 'Import a library through its index (@aviary/<lib>), never its src/.' }];

/** Files of the translation layer (libs/xds/translate). */
export const translateFiles = ['libs/xds/translate/**/*.ts'];

/**
 * Translation returns plain resources and the cache wraps them: no file of the translation layer
 * imports the serving layer. Checked per file rather than by tag, since the enforce-module-boundaries
 * tag rules follow dependencies transitively and the testing lib (shared by every layer's specs)
 * holds the serving layer's hand-set SnapshotCache.
 */
export const translateImportPatterns = [
  ...deepImportPatterns,
  { group: ['@aviary/xds-cache', '@aviary/xds-server'], message: 'Translation returns plain resources; the serving layer (xds-cache, xds-server) wraps them: do not import it here.' },
];
