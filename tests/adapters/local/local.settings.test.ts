/** `/settings` in the terminal: the shared settings grammar, through the real bot/, reaching `/imagine` and `/caption`. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { startLocalAdapter } from '../../../adapters/local/local.adapter.js';
import { makeBot } from '../../bot/helpers.js';
import { until } from '../../helpers/until.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'pictalk-local-settings-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('settings set, show, reset; /imagine and /caption follow them; a bad value is refused with its message', async () => {
  const t = makeBot();
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  const adapter = startLocalAdapter({ bot: t.bot, input, output, outDir: join(dir, 'out') });
  // terminal commands run side by side: wait for each answer before the next line
  const line = async (command: string, answer: string): Promise<void> => {
    input.write(`${command}\n`);
    await until(() => text.includes(answer), 10_000, 2);
    expect(text).toContain(answer);
  };

  await line('/settings set steps 7', '`steps` is now 7 (not set before).');
  await line('/settings set voice off', '`voice` is now off (not set before).');
  await line('/settings set strength 7', 'Expected `strength` to be a number greater than 0 and at most 1, got `7` (number)');
  await line('/settings server set max_count 2', '`max_count` is now 2 (not set before).');
  await line('/settings', '• `steps`: 7\n');
  await line('/imagine a red circle --seed 5', 'seed 5 · 7 steps');
  expect(t.core.of('imagine')[0]!.input).toMatchObject({ request: { steps: 7 } });
  await line('/imagine two circles --count 3', "Expected `count` to be at most 2 (this server's maximum), got `3` (number)");
  expect(t.core.of('imagine')).toHaveLength(1);

  const file = join(dir, 'photo.png');
  writeFileSync(file, 'png:a blue square');
  await line(`/caption ${file}`, 'A drawing of a blue square.');
  expect(t.core.of('speak')).toHaveLength(0);
  await line(`/caption ${file} --voice`, 'voice: ');
  expect(t.core.of('speak')).toHaveLength(1);

  await line('/settings reset', 'Reset your settings `steps`, `voice`.');
  input.end();
  await adapter.done;
});
