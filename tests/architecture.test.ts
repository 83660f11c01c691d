/**
 * The dependency rules in eslint.config.js must actually fire: the core never imports its edges, and each heavy
 * dependency has one owner. (npm test lints the tree; this proves the lint would catch a violation.)
 */
import { ESLint } from 'eslint';

// The dependency rules only: the type-aware rules of bot/ and adapters/ need files on disk, and these exist in memory.
const eslint = new ESLint({
  overrideConfig: {
    languageOptions: { parserOptions: { projectService: false } },
    rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/no-misused-promises': 'off', '@typescript-eslint/await-thenable': 'off' },
  },
});

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('dependency rules', () => {
  it('refuse inference/ importing bot/ or adapters/', async () => {
    expect(await problems('inference/example.ts', "import { Bot } from '../bot/bot.js';\nexport const b = Bot;\n")).toEqual([
      expect.stringContaining('inference/ must not import bot/ or adapters/'),
    ]);
    expect(await problems('inference/example.ts', "import { start } from '../adapters/main.js';\nexport const s = start;\n")).toHaveLength(1);
  });

  it('refuse common/ importing any layer: every layer imports it', async () => {
    expect(await problems('common/example.ts', "import { InferenceCore } from '../inference/core.js';\nexport const c = InferenceCore;\n")).toEqual([
      expect.stringContaining('common/ must not import inference/, bot/ or adapters/'),
    ]);
    expect(await problems('common/example.ts', "import { Bot } from '../bot/bot.js';\nexport const b = Bot;\n")).toHaveLength(1);
  });

  it('refuse bot/ importing adapters/', async () => {
    expect(await problems('bot/example.ts', "import { loadSettings } from '../adapters/config.js';\nexport const l = loadSettings;\n")).toEqual([
      expect.stringContaining('bot/ must not import adapters/'),
    ]);
  });

  it('let only the owner import a heavy dependency', async () => {
    const ort = "import * as ort from 'onnxruntime-node';\nexport const o = ort;\n";
    expect(await problems('inference/text-to-image.pipeline.ts', ort)).toEqual([expect.stringContaining('Only inference/onnx.backend.ts')]);
    expect(await problems('inference/onnx.backend.ts', ort)).toEqual([]);
    const discord = "import { Client } from 'discord.js';\nexport const c = Client;\n";
    expect(await problems('bot/bot.ts', discord)).toHaveLength(1);
    expect(await problems('adapters/slack/slack.adapter.ts', discord)).toHaveLength(1);
    expect(await problems('adapters/discord/discord.adapter.ts', discord)).toEqual([]);
    expect(await problems('adapters/main.ts', "import Database from 'better-sqlite3';\nexport const d = Database;\n")).toHaveLength(1);
    expect(await problems('bot/bot.ts', "import pg from 'pg';\nexport const p = pg;\n")).toHaveLength(1);
    expect(await problems('bot/postgres.store.ts', "import pg from 'pg';\nexport const p = pg;\n")).toEqual([]);
  });

  it('allow the layers to point inward', async () => {
    expect(await problems('adapters/main.ts', "import { Bot } from '../bot/bot.js';\nimport { InferenceCore } from '../inference/core.js';\nexport const x = [Bot, InferenceCore];\n")).toEqual([]);
    expect(await problems('bot/bot.ts', "import { PictalkError } from '../common/errors.js';\nexport const e = PictalkError;\n")).toEqual([]);
    expect(await problems('inference/core.ts', "import { PictalkError } from '../common/errors.js';\nexport const e = PictalkError;\n")).toEqual([]);
  });
});
