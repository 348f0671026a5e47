import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Transports that domain and util libraries must never import (ARCHITECTURE.md).
const transports = [
  'fastify', '@fastify/*', '@nats-io/*', '@grpc/*', '@kubernetes/*', 'undici',
  'node:net', 'node:http', 'node:https', 'node:http2', 'node:tls', 'node:dgram',
  'net', 'http', 'https', 'http2', 'tls', 'dgram',
];

// The architecture's dependency rules. Tests may also use the testing and infra libraries
// (a real nats-server, openssl helpers); production code may not.
function boundaries(forTests) {
  const extra = forTests ? ['type:testing', 'type:infra'] : [];
  const only = (...tags) => [...new Set([...tags, ...extra])];
  return {
    enforceBuildableLibDependency: false,
    allow: [],
    depConstraints: [
      { sourceTag: 'type:app', onlyDependOnLibsWithTags: only('type:domain', 'type:util', 'type:infra', 'type:transport') },
      { sourceTag: 'type:transport', onlyDependOnLibsWithTags: only('type:domain', 'type:util', 'type:infra', 'type:transport') },
      { sourceTag: 'type:infra', onlyDependOnLibsWithTags: only('type:domain', 'type:util', 'type:infra'), bannedExternalImports: forTests ? [] : ['fastify', '@fastify/*', '@nats-io/*', '@grpc/*', '@kubernetes/*'] },
      { sourceTag: 'type:domain', onlyDependOnLibsWithTags: only('type:domain', 'type:util'), bannedExternalImports: forTests ? [] : [...transports, 'pino', 'prom-client', '@opentelemetry/*'] },
      { sourceTag: 'type:util', onlyDependOnLibsWithTags: only('type:util'), bannedExternalImports: forTests ? [] : [...transports, 'prom-client', '@opentelemetry/*'] },
      { sourceTag: 'type:tooling', onlyDependOnLibsWithTags: only('type:domain', 'type:util', 'type:infra', 'type:transport') },
      { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:domain', 'type:util', 'type:infra', 'type:transport', 'type:testing'] },
    ],
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.nx/**', '.aviary/**', 'coverage/**', '**/*.mjs', '**/*.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': ['error', boundaries(false)],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration', message: 'Use named exports (STYLE.md): no export *.' },
      ],
      'no-restricted-imports': ['error', { patterns: [{ group: ['@aviary/*/src/*', '**/libs/**/src/*'], message: 'Import a library through its index (@aviary/<lib>), never its src/.' }] }],
    },
  },
  {
    files: ['**/*.spec.ts', '**/*.test-helper.ts', '**/src/testing/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': ['error', boundaries(true)] },
  },
  {
    // process.env and process.argv are read in one place: @aviary/config (and tools' own scripts).
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: ['libs/platform/config/src/process.ts', 'libs/platform/nats-runner/src/**', '**/*.spec.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through @aviary/config.' }],
    },
  },
);
