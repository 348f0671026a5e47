import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';
import { boundaries, deepImportPatterns, testFiles, translateFiles, translateImportPatterns } from './tools/lint/boundaries.mjs';

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
      'no-restricted-imports': ['error', { patterns: deepImportPatterns }],
    },
  },
  {
    files: testFiles,
    rules: { '@nx/enforce-module-boundaries': ['error', boundaries(true)] },
  },
  {
    files: translateFiles,
    rules: { 'no-restricted-imports': ['error', { patterns: translateImportPatterns }] },
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
