// Lint rules, and the dependency rule that keeps the core from importing its edges:
// adapters → bot → inference, never the other way; each heavy dependency is imported by one module only.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const only = (name, owner) => ({
  group: [name, `${name}/*`],
  message: `Only ${owner} may import ${name}; go through it.`,
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'models/**/*.py', '.venv/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['inference/**/*.ts'],
    ignores: ['inference/onnx.backend.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/bot/**', '**/bot', '**/adapters/**', '**/adapters'], message: 'inference/ must not import bot/ or adapters/.' },
          only('onnxruntime-node', 'inference/onnx.backend.ts'),
          only('discord.js', 'adapters/discord/'),
          only('@slack/bolt', 'adapters/slack/'),
        ],
      }],
    },
  },
  {
    files: ['bot/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/adapters/**', '**/adapters'], message: 'bot/ must not import adapters/.' },
          only('onnxruntime-node', 'inference/onnx.backend.ts'),
          only('discord.js', 'adapters/discord/'),
          only('@slack/bolt', 'adapters/slack/'),
        ],
      }],
    },
  },
);
