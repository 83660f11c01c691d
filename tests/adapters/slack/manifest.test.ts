/** The operator's manifest must declare what the adapter listens for, or Slack never sends it. */
import { readFileSync } from 'node:fs';
import { SHORTCUT_CAPTION, SLASH_COMMANDS } from '../../../adapters/slack/slack.adapter.js';

const manifest = readFileSync(new URL('../../../adapters/slack/manifest.yaml', import.meta.url), 'utf8');
const listed = (key: string) => [...manifest.matchAll(new RegExp(`^\\s*-?\\s*${key}: (\\S+)`, 'gm'))].map((m) => m[1]);

test('every slash command the adapter handles is declared, with escaped mentions', () => {
  expect(listed('command').sort()).toEqual([...SLASH_COMMANDS].sort());
  expect(listed('should_escape')).toEqual(SLASH_COMMANDS.map(() => 'true'));
});

test('the message shortcut, the scopes and the events auto-captioning needs', () => {
  expect(listed('callback_id')).toEqual([SHORTCUT_CAPTION]);
  const scopes = [...manifest.matchAll(/^\s+- ([a-z]+:[a-z]+|commands)\b/gm)].map((m) => m[1]);
  expect(scopes).toEqual(['commands', 'chat:write', 'files:write', 'files:read', 'users:read', 'channels:history', 'groups:history', 'im:write']);
  expect(manifest).toMatch(/bot_events:\n\s+- message\.channels\n\s+- message\.groups/);
});
