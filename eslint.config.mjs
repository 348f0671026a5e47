import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Transports that domain and util libraries must never import (ARCHITECTURE.md).
const transports = [
  'fastify', '@fastify/*', '@nats-io/*', '@grpc/*', '@kubernetes/*', 'undici',
  'node:net', 'node:http', 'node:https', 'node:http2', 'node:tls', 'node:dgram',
  'net', 'http', 'https', 'http2', 'tls', 'dgram',
];

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
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:domain', 'type:util', 'type:infra', 'type:transport'] },
            { sourceTag: 'type:transport', onlyDependOnLibsWithTags: ['type:domain', 'type:util', 'type:infra', 'type:transport'] },
            { sourceTag: 'type:infra', onlyDependOnLibsWithTags: ['type:domain', 'type:util', 'type:infra'], bannedExternalImports: ['fastify', '@fastify/*', '@nats-io/*', '@grpc/*', '@kubernetes/*'] },
            { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain', 'type:util'], bannedExternalImports: [...transports, 'pino', 'prom-client', '@opentelemetry/*'] },
            { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util'], bannedExternalImports: [...transports, 'prom-client', '@opentelemetry/*'] },
            { sourceTag: 'type:tooling', onlyDependOnLibsWithTags: ['type:domain', 'type:util', 'type:infra', 'type:transport'] },
            { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:domain', 'type:util', 'type:infra', 'type:transport', 'type:testing'] },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration', message: 'Use named exports (STYLE.md): no export *.' },
      ],
      'no-restricted-imports': ['error', { patterns: [{ group: ['@aviary/*/src/*', '**/libs/*/src/*'], message: 'Import a library through its index (@aviary/<lib>), never its src/.' }] }],
    },
  },
  {
    // process.env and process.argv are read in one place: @aviary/config (and tools' own scripts).
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: ['libs/config/src/process.ts', 'libs/nats-runner/src/**', '**/*.spec.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through @aviary/config.' }],
    },
  },
);
