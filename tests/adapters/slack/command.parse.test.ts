import { parseAutoCaption, parseImagine, parseQuota, parseUserMention, tokenize } from '../../../adapters/slack/command.parse.js';
import { messageBlocks, renderStatus, toMrkdwn } from '../../../adapters/slack/slack.conversation.js';

describe('/imagine text', () => {
  test('flags anywhere, as `--flag value` or `--flag=value`; the other words, in order, are the prompt', () => {
    expect(parseImagine('a red --seed 7 fox --guidance=6.5 --count 2 --scheduler DDIM')).toEqual({
      prompt: 'a red fox', seed: 7, guidance: 6.5, count: 2, scheduler: 'ddim',
    });
  });

  test('quoted values (straight or curly) stay whole; Slack\'s HTML escapes are undone', () => {
    expect(parseImagine('cats &amp; dogs --negative “blurry, dark” --steps 20')).toEqual({ prompt: 'cats & dogs', negative: 'blurry, dark', steps: 20 });
    expect(parseImagine('"--seed" as words')).toEqual({ prompt: '--seed as words' });
    expect(tokenize('a "b c" d')).toEqual([{ text: 'a', quoted: false }, { text: 'b c', quoted: true }, { text: 'd', quoted: false }]);
  });

  test('an em dash typed for `--` is read as a flag', () => {
    expect(parseImagine('a fox —seed 3')).toEqual({ prompt: 'a fox', seed: 3 });
  });

  test.each([
    ['a fox --sed 7', /Unknown option `--sed`; \/imagine knows --seed, --steps/],
    ['a fox --seed', /`--seed` needs a value/],
    ['a fox --seed seven', /Expected `--seed` to be an integer, got `"seven"` \(string\)/],
    ['a fox --guidance lots', /Expected `--guidance` to be a number/],
    ['a fox --scheduler magic', /Expected `--scheduler` to be one of pndm, ddim/],
    ['a fox --seed 1 --seed 2', /given twice/],
    ['--seed 1', /Expected a prompt to draw, got none/],
  ])('%s is refused with a clear message', (text, message) => {
    expect(() => parseImagine(text)).toThrow(expect.objectContaining({ code: 'input.invalid', message: expect.stringMatching(message) }));
  });

  test('ranges are left to bot/: an out-of-range value passes through unclamped', () => {
    expect(parseImagine('x --steps 500').steps).toBe(500);
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
    const blocks = messageBlocks('x', [{ id: 'reroll:j1', label: 'Re-roll', style: 'primary' }, { id: 'cancel:j1', label: 'Cancel', style: 'secondary' }]);
    expect(blocks[1]).toEqual({
      type: 'actions', block_id: 'pictalk_buttons', elements: [
        { type: 'button', action_id: 'pictalk.reroll', value: 'j1', style: 'primary', text: { type: 'plain_text', text: 'Re-roll' } },
        { type: 'button', action_id: 'pictalk.cancel', value: 'j1', text: { type: 'plain_text', text: 'Cancel' } },
      ],
    });
  });
});
