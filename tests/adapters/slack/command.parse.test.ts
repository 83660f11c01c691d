import { parseAutoCaption, parseImagine, parsePictalk, parseQuota, parseUserMention, tokenize } from '../../../adapters/slack/command.parse.js';
import { messageBlocks, renderStatus, toMrkdwn } from '../../../adapters/slack/slack.conversation.js';

describe('/imagine text', () => {
  // The grammar itself is bot/'s, tested in tests/bot/commands/command.text.test.ts; here only Slack's part of it.
  test('Slack\'s HTML escapes are undone before the shared grammar reads the text', () => {
    expect(parseImagine('cats &amp; dogs --negative “blurry, dark” --steps 20')).toEqual({ prompt: 'cats & dogs', negative: 'blurry, dark', steps: 20 });
    expect(parseImagine('a &lt;b&gt; c --seed=7')).toEqual({ prompt: 'a <b> c', seed: 7 });
    expect(tokenize('a "b c" d')).toEqual([{ text: 'a', quoted: false }, { text: 'b c', quoted: true }, { text: 'd', quoted: false }]);
  });
});

describe('moderation text', () => {
  test('/pictalk-quota set, show and reset with escaped mentions', () => {
    expect(parseQuota('set <@U123ABC|bob> caption 4')).toEqual({ name: 'quota.set', target: { kind: 'user', id: 'U123ABC' }, kind: 'caption', limit: 4 });
    expect(parseQuota('set default imagine 0')).toEqual({ name: 'quota.set', target: { kind: 'default' }, kind: 'imagine', limit: 0 });
    expect(parseQuota('show')).toEqual({ name: 'quota.show' });
    expect(parseQuota('show <@W0ENT>')).toEqual({ name: 'quota.show', target: { kind: 'user', id: 'W0ENT' } });
    expect(parseQuota('reset U0BOB')).toEqual({ name: 'quota.reset', target: { kind: 'user', id: 'U0BOB' } });
  });

  test('an unescaped @name says which command setting is missing', () => {
    expect(() => parseQuota('reset @bob')).toThrow(/Escape channels, users, and links/);
    expect(() => parseQuota('set <@U1> imagine -1')).toThrow(/whole number/);
    expect(() => parseQuota('grant <@U1>')).toThrow(/Expected a subcommand set, show or reset/);
    expect(parseUserMention('<#C123|general>')).toBeUndefined();
  });

  test('/pictalk-caption on|off for the command\'s channel', () => {
    expect(parseAutoCaption(' On ', 'C1')).toEqual({ name: 'autocaption.set', channelId: 'C1', enabled: true });
    expect(parseAutoCaption('off', 'C1')).toEqual({ name: 'autocaption.set', channelId: 'C1', enabled: false });
    expect(() => parseAutoCaption('maybe', 'C1')).toThrow(/Expected `on` or `off`/);
  });
});

describe('rendering', () => {
  test('status lines and mrkdwn', () => {
    expect(renderStatus({ state: 'queued', jobId: 'j', position: 2 })).toBe('⏳ Queued — position 2');
    expect(renderStatus({ state: 'running', jobId: 'j', stage: 'denoise', step: 7, total: 20 })).toBe('🎨 Step 7/20 · denoise');
    expect(toMrkdwn('**a <b> & c**')).toBe('*a &lt;b&gt; &amp; c*');
  });

  test('buttons: action_id `pictalk.<verb>`, value the job id, no style for secondary', () => {
    const blocks = messageBlocks('x', [{ action: 'reroll', jobId: 'j1', label: 'Re-roll', style: 'primary' }, { action: 'cancel', jobId: 'j1', label: 'Cancel', style: 'secondary' }]);
    expect(blocks[1]).toEqual({
      type: 'actions', block_id: 'pictalk_buttons', elements: [
        { type: 'button', action_id: 'pictalk.reroll', value: 'j1', style: 'primary', text: { type: 'plain_text', text: 'Re-roll' } },
        { type: 'button', action_id: 'pictalk.cancel', value: 'j1', text: { type: 'plain_text', text: 'Cancel' } },
      ],
    });
  });
});

describe('/pictalk text', () => {
  test('alone it is the status; `settings ...` is the settings grammar, after Slack\'s escapes are undone', () => {
    expect(parsePictalk('')).toEqual({ name: 'status' });
    expect(parsePictalk(' status ')).toEqual({ name: 'status' });
    expect(parsePictalk('settings')).toEqual({ name: 'settings.show', scope: 'user' });
    expect(parsePictalk('Settings set negative cats &amp; dogs')).toEqual({ name: 'settings.set', scope: 'user', values: { negative: 'cats & dogs' } });
    expect(parsePictalk('settings set private on')).toEqual({ name: 'settings.set', scope: 'user', values: { private: 'on' } });
    expect(parsePictalk('settings server set max_count 2')).toEqual({ name: 'settings.set', scope: 'server', values: { max_count: '2' } });
    expect(parsePictalk('settings server reset')).toEqual({ name: 'settings.reset', scope: 'server' });
  });

  test('anything else is refused with the usage', () => {
    expect(() => parsePictalk('setings')).toThrow(/^Expected nothing, `status` or `settings \.\.\.`, got `"setings"` \(string\)\. Usage: `\/pictalk`/);
    expect(() => parsePictalk('settings set steps')).toThrow(/Usage: `\/pictalk settings show`/);
  });
});
