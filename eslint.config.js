import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      '.test-dist-*/**',
      '.test-console-*/**',
      'node_modules/**',
      'data/**',
      '.tmp/**',
      'coverage/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Node 20's V8 gives an object literal that starts with a spread and has more members
    // (`{ ...a, b }`, `{ ...a, ...b }`) a hidden class of its own every time it runs. Hidden
    // classes live in the old generation, so on a request path each such literal is old-space
    // garbage that brings the next full (stop-the-world) collection closer. docs/benchmarks.md
    // (issue #15, fourth round) has the measurement. Write the members out, put a plain member
    // first, or use Object.assign({}, a, { b }).
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/config/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ObjectExpression[properties.length>1] > SpreadElement:first-child',
          message:
            'An object literal starting with a spread gets a new hidden class each time (Node 20): write the members out, put a plain member first, or use Object.assign({}, a, { b }). See eslint.config.js.',
        },
      ],
    },
  },
);
