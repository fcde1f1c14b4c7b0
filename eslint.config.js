// ESLint: typescript-eslint's type-checked rules over src/ (the compiler's own project), over
// test/*.js, scripts/*.mjs and bench/*.js (typed with JSDoc, checked by tsconfig.test.json) and over
// web/*.js (checked by tsconfig.web.json, for the browser); the recommended rules over any other
// JavaScript (eslint.config.js, train.js). Formatting is Prettier's (`npm run format`);
// `npm run lint` checks both.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'dist-web/', 'node_modules/', 'runs/', 'demo-output/', 'test/fixtures/'] },
  {
    files: ['src/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
    rules: { 'no-unused-vars': ['error', { ignoreRestSiblings: true }] },
  },
  {
    files: ['test/*.js', 'scripts/*.mjs', 'bench/*.js'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }] },
  },
  {
    files: ['web/*.js'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { project: './tsconfig.web.json', tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }] },
  },
  {
    files: ['web/**/*.js', 'test/web.test.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
