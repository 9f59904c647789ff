import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '.fabric/**', 'run/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/explicit-module-boundary-types': 'error',
    },
  },
  {
    // Chaincode must be deterministic on every endorsing peer (clients may read the clock).
    files: ['chaincode/src/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Non-deterministic: derive randomness from the transaction.',
        },
        { object: 'Date', property: 'now', message: 'Non-deterministic: use the transaction timestamp.' },
        {
          object: 'process',
          property: 'env',
          message: 'Differs between peers: only as an endorsement gate (see fabricContext.ts).',
        },
      ],
    },
  },
  // Test helpers return inferred fixture shapes; module-boundary types matter for product code.
  { files: ['**/test/**/*.ts'], rules: { '@typescript-eslint/explicit-module-boundary-types': 'off' } },
  // CommonJS entry shims (npm bin links) load the built code with require().
  { files: ['**/bin/*.js'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { module: 'writable', require: 'readonly', process: 'readonly' } },
  },
  prettier,
);
