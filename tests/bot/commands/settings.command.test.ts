import type { ImagineRequest } from '../../../inference/types.js';
import type { ImagineOptions } from '../../../bot/types.js';
import { applyImagineSettings, checkSettingValue, resolveSettings } from '../../../bot/user.settings.js';
import { actor, makeBot, moderator } from '../helpers.js';

const imagineRequest = (t: ReturnType<typeof makeBot>, index = 0): ImagineRequest => {
  const job = t.core.of('imagine')[index];
  if (!job || job.input.kind !== 'imagine') throw new Error(`no imagine job ${index}`);
  return job.input.request;
};

describe('settings values', () => {
  it.each([
    ['steps', '0', 'Expected `steps` to be an integer from 1 to 50, got `0` (number)'],
    ['steps', 'many', 'Expected `steps` to be an integer from 1 to 50, got `"many"` (string)'],
    ['guidance', 21, 'Expected `guidance` to be a number from 0 to 20, got `21` (number)'],
    ['count', 5, 'Expected `count` to be an integer from 1 to 4, got `5` (number)'],
    ['scheduler', 'karras', 'Expected `scheduler` to be one of `pndm`, `ddim`, `euler-a`, `dpmpp-2m`, `lcm`, got `"karras"` (string)'],
    ['strength', 7, 'Expected `strength` to be a number greater than 0 and at most 1, got `7` (number)'],
    ['strength', 0, 'Expected `strength` to be a number greater than 0 and at most 1, got `0` (number)'],
    ['strength', 'half', 'Expected `strength` to be a number greater than 0 and at most 1, got `"half"` (string)'],
    ['voice', 'maybe', 'Expected `voice` to be on or off, got `"maybe"` (string)'],
    ['max_steps', 51, 'Expected `max_steps` to be an integer from 1 to 50, got `51` (number)'],
  ] as const)('refuses %s = %j', (key, value, message) => {
    expect(() => checkSettingValue(key, value)).toThrow(message);
  });

  it('reads typed text and typed values alike', () => {
    expect(checkSettingValue('steps', '30')).toBe(30);
    expect(checkSettingValue('guidance', '6.5')).toBe(6.5);
    expect(checkSettingValue('scheduler', 'DDIM')).toBe('ddim');
    expect(checkSettingValue('strength', '.3')).toBe(0.3);
    expect(checkSettingValue('strength', 1)).toBe(1);
    expect(checkSettingValue('private', 'on')).toBe(true);
    expect(checkSettingValue('voice', false)).toBe(false);
  });

  it('lets explicit options win over defaults, and lowers a stored default over a later maximum', () => {
    expect(applyImagineSettings({ prompt: 'p', steps: 12 }, { steps: 30, guidance: 4, negativePrompt: 'dark' })).toEqual({
      options: { prompt: 'p', steps: 12, guidance: 4, negative: 'dark' }, notes: [],
    });
    const bare: ImagineOptions = { prompt: 'p' };
    expect(applyImagineSettings(bare, { steps: 40, count: 4, maxSteps: 30, maxCount: 2 })).toEqual({
      options: { prompt: 'p', steps: 30, count: 2 },
      notes: ["Steps lowered from the default 40 to this server's maximum of 30.", "Image count lowered from the default 4 to this server's maximum of 2."],
    });
    expect(() => applyImagineSettings({ prompt: 'p', steps: 31 }, { maxSteps: 30 }))
      .toThrow("Expected `steps` to be at most 30 (this server's maximum), got `31` (number)");
  });
});

describe('/settings for oneself', () => {
  it('shows nothing set, then what was set, with the server defaults beneath', async () => {
    const t = makeBot();
    expect((await t.send({ name: 'settings.show', scope: 'user' })).reply).toEqual({
      text: [
        'Your settings (a command option overrides them; unset ones come from the server, then the model):',
        '• `steps`: not set', '• `guidance`: not set', '• `scheduler`: not set', '• `negative`: not set', '• `count`: not set',
        '• `strength`: not set', '• `voice`: not set', '• `private`: not set',
        'Server limits: `max_steps` not set, `max_count` not set.',
      ].join('\n'),
      ephemeral: true,
    });
    await t.send({ name: 'settings.set', scope: 'server', values: { guidance: 5, max_steps: 40 } }, moderator());
    const set = (await t.send({ name: 'settings.set', scope: 'user', values: { steps: '30', negative: 'blurry, dark', voice: 'off' } })).reply;
    expect(set.text).toBe('`steps` is now 30 (not set before).\n`negative` is now "blurry, dark" (not set before).\n`voice` is now off (not set before).');
    expect(set.ephemeral).toBe(true);
    const shown = (await t.send({ name: 'settings.show', scope: 'user' })).reply.text;
    expect(shown).toContain('• `steps`: 30\n• `guidance`: 5 (server default)\n');
    expect(shown).toContain('Server limits: `max_steps` 40, `max_count` not set.');
    expect(await resolveSettings(t.store, 'space1', 'u1')).toEqual({ steps: 30, guidance: 5, negativePrompt: 'blurry, dark', voice: false, maxSteps: 40 });
    // another user sees only the server's
    expect(await resolveSettings(t.store, 'space1', 'u2')).toEqual({ guidance: 5, maxSteps: 40 });
  });

  it('refuses an unknown key listing the valid ones, and a bad value, storing nothing of the request', async () => {
    const t = makeBot();
    expect((await t.send({ name: 'settings.set', scope: 'user', values: { stpes: 3 } })).reply.text)
      .toBe('Unknown setting `"stpes"` (string); settings are `steps`, `guidance`, `scheduler`, `negative`, `count`, `strength`, `voice`, `private`.');
    const reply = (await t.send({ name: 'settings.set', scope: 'user', values: { steps: 20, strength: 7 } })).reply;
    expect(reply.error?.code).toBe('input.invalid');
    expect(reply.text).toBe('Expected `strength` to be a number greater than 0 and at most 1, got `7` (number).');
    expect(await t.store.listSettings('space1', '')).toEqual([]);
    // a user cannot set the server's limits
    expect((await t.send({ name: 'settings.set', scope: 'user', values: { max_steps: 3 } })).reply.text).toMatch(/^Unknown setting `"max_steps"`/);
  });

  it('checks a negative prompt against the length limit and the blocklist', async () => {
    const t = makeBot({ maxPromptChars: 10 });
    await t.send({ name: 'blocklist.add', pattern: 'gore' }, moderator());
    expect((await t.send({ name: 'settings.set', scope: 'user', values: { negative: 'far too long text' } })).reply.error?.code).toBe('input.too_large');
    expect((await t.send({ name: 'settings.set', scope: 'user', values: { negative: 'gore' } })).reply.error?.code).toBe('content.blocked');
    expect((await t.send({ name: 'settings.set', scope: 'user', values: { negative: '  ' } })).reply.text)
      .toBe('Expected `negative` to be some text, got an empty one; `reset negative` clears it.');
    expect(await t.store.listSettings('space1', 'user:')).toEqual([]);
  });

  it('refuses a default over the server maximum, naming it', async () => {
    const t = makeBot();
    await t.send({ name: 'settings.set', scope: 'server', values: { max_steps: 25, max_count: 2 } }, moderator());
    expect((await t.send({ name: 'settings.set', scope: 'user', values: { steps: 30 } })).reply.text)
      .toBe("Expected `steps` to be at most 25 (this server's maximum), got `30` (number) as a default.");
    expect((await t.send({ name: 'settings.set', scope: 'user', values: { count: 3 } })).reply.text)
      .toBe("Expected `count` to be at most 2 (this server's maximum), got `3` (number) as a default.");
    expect(await t.store.listSettings('space1', 'user:')).toEqual([]);
  });

  it('resets one key or all of them', async () => {
    const t = makeBot();
    await t.send({ name: 'settings.set', scope: 'user', values: { steps: 30, guidance: 3 } });
    expect((await t.send({ name: 'settings.reset', scope: 'user', key: 'steps' })).reply.text).toBe('Reset your setting `steps`.');
    expect((await t.send({ name: 'settings.reset', scope: 'user', key: 'steps' })).reply.text).toBe('Your setting `steps` is not set; nothing to reset.');
    expect((await t.send({ name: 'settings.reset', scope: 'user' })).reply.text).toBe('Reset your setting `guidance`.');
    expect((await t.send({ name: 'settings.reset', scope: 'user' })).reply.text).toBe('You have no settings set; nothing to reset.');
    expect((await t.send({ name: 'settings.reset', scope: 'user', key: 'colour' })).reply.error?.code).toBe('input.invalid');
  });
});

describe('/settings server (moderators)', () => {
  it.each([
    { name: 'settings.show', scope: 'server' },
    { name: 'settings.set', scope: 'server', values: { steps: 10 } },
    { name: 'settings.reset', scope: 'server' },
  ] as const)('%j is denied to a non-moderator and changes nothing', async (command) => {
    const t = makeBot();
    const reply = (await t.send(command, actor('u9'))).reply;
    expect(reply.error).toEqual({ code: 'permission.denied', retryable: false });
    expect(await t.store.listSettings('space1', '')).toEqual([]);
    expect(await t.store.listAudit('space1')).toEqual([]);
  });

  it('audits server changes with before and after, and warns when a maximum undercuts the server default', async () => {
    const t = makeBot();
    t.clock.ms = 1_750_000_000_000;
    const mod = moderator('m1');
    await t.send({ name: 'settings.set', scope: 'server', values: { steps: 40 } }, mod);
    const reply = (await t.send({ name: 'settings.set', scope: 'server', values: { max_steps: 30 } }, mod)).reply;
    expect(reply.text).toBe([
      '`max_steps` is now 30 (not set before).',
      'The server default of 40 steps is above the maximum; /imagine lowers it to 30.',
      "Members' own defaults above a maximum are lowered to it when they use /imagine.",
    ].join('\n'));
    await t.send({ name: 'settings.reset', scope: 'server', key: 'max-steps' }, mod);
    expect(await t.store.listAudit('space1')).toEqual([
      { id: 3, spaceId: 'space1', actorId: 'm1', action: 'settings.reset', target: 'server max_steps', before: { value: 30 }, after: null, at: 1_750_000_000_000 },
      { id: 2, spaceId: 'space1', actorId: 'm1', action: 'settings.set', target: 'server max_steps', before: null, after: { value: 30 }, at: 1_750_000_000_000 },
      { id: 1, spaceId: 'space1', actorId: 'm1', action: 'settings.set', target: 'server steps', before: null, after: { value: 40 }, at: 1_750_000_000_000 },
    ]);
    expect((await t.send({ name: 'settings.show', scope: 'server' }, mod)).reply.text).toContain('• `steps`: 40\n');
  });

  it('refuses a server default over the server maximum set in the same command', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'settings.set', scope: 'server', values: { max_count: 2, count: 3 } }, moderator())).reply;
    expect(reply.text).toBe("Expected `count` to be at most 2 (this server's maximum), got `3` (number) as a default.");
    expect(await t.store.listSettings('space1', '')).toEqual([]);
  });
});

describe('/imagine with settings', () => {
  it('uses the user default over the server default, and a command option over both', async () => {
    const t = makeBot();
    await t.send({ name: 'settings.set', scope: 'server', values: { steps: 15, guidance: 3, scheduler: 'ddim' } }, moderator());
    await t.send({ name: 'settings.set', scope: 'user', values: { steps: 25, negative: 'blurry', count: 2 } });
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a red fox', guidance: 6, seed: 5 } })).reply;
    expect(imagineRequest(t)).toEqual({ prompt: 'a red fox', count: 2, negativePrompt: 'blurry', seed: 5, steps: 25, guidance: 6, scheduler: 'ddim' });
    expect(reply.images).toHaveLength(2);
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).charged).toBe(2);
    // the job keeps what ran, so a re-roll repeats it
    const rerolled = (await t.send({ name: 'reroll', jobId: reply.jobId! })).reply;
    expect(rerolled.images).toHaveLength(2);
    expect(imagineRequest(t, 1)).toMatchObject({ steps: 25, guidance: 6, negativePrompt: 'blurry', scheduler: 'ddim' });
  });

  it('refuses an option over the server maximum, naming it, and charges nothing', async () => {
    const t = makeBot();
    await t.send({ name: 'settings.set', scope: 'server', values: { max_steps: 20, max_count: 1 } }, moderator());
    const steps = (await t.send({ name: 'imagine', options: { prompt: 'x', steps: 21 } })).reply;
    expect(steps.error).toEqual({ code: 'input.invalid', retryable: false });
    expect(steps.text).toBe("Expected `steps` to be at most 20 (this server's maximum), got `21` (number).");
    const count = (await t.send({ name: 'imagine', options: { prompt: 'x', count: 2 } })).reply;
    expect(count.text).toBe("Expected `count` to be at most 1 (this server's maximum), got `2` (number).");
    expect(t.core.of('imagine')).toHaveLength(0);
    expect(await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).toEqual({ reserved: 0, charged: 0, refunded: 0 });
  });

  it('lowers a stored default that a later maximum undercuts, and says so', async () => {
    const t = makeBot();
    await t.send({ name: 'settings.set', scope: 'user', values: { steps: 40 } });
    await t.send({ name: 'settings.set', scope: 'server', values: { max_steps: 30 } }, moderator());
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'x', seed: 1 } })).reply;
    expect(imagineRequest(t).steps).toBe(30);
    expect(reply.text).toBe("x\nseed 1 · 30 steps · guidance 7.5 · pndm · 64×64\nSteps lowered from the default 40 to this server's maximum of 30.");
  });

  it('caps the model folder\'s default steps by the server maximum when nothing names steps', async () => {
    const t = makeBot();
    await t.send({ name: 'settings.set', scope: 'server', values: { max_steps: 8 } }, moderator());
    await t.send({ name: 'imagine', options: { prompt: 'x' } });
    expect(imagineRequest(t)).toMatchObject({ maxSteps: 8 });
    expect(imagineRequest(t).steps).toBeUndefined();
  });
});

describe('voice and private settings', () => {
  const attachment = { name: 'cat.png', contentType: 'image/png', size: 10, fetch: async () => Buffer.from('img:cat') };

  it('turns the caption voice message off by default, and an explicit voice option back on', async () => {
    const t = makeBot();
    await t.send({ name: 'settings.set', scope: 'user', values: { voice: false } });
    expect((await t.send({ name: 'caption', attachment })).reply.voice).toBeUndefined();
    expect(t.core.of('speak')).toHaveLength(0);
    expect((await t.send({ name: 'caption', attachment, voice: true })).reply.voice).toBeDefined();
  });

  it('makes imagine and caption replies ephemeral for a user who wants private replies', async () => {
    const t = makeBot();
    await t.send({ name: 'settings.set', scope: 'user', values: { private: 'on' } });
    expect(await t.bot.privateReplies(actor())).toBe(true);
    expect(await t.bot.privateReplies(actor('u2'))).toBe(false);
    const mine = (await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply;
    expect(mine.ephemeral).toBe(true);
    expect(mine.images).toHaveLength(1);
    expect((await t.send({ name: 'caption', attachment })).reply.ephemeral).toBe(true);
    expect((await t.send({ name: 'imagine', options: { prompt: 'x' } }, actor('u2'))).reply.ephemeral).toBeUndefined();
    // a server default applies to everyone who has not said otherwise
    await t.send({ name: 'settings.set', scope: 'server', values: { private: true } }, moderator());
    expect(await t.bot.privateReplies(actor('u2'))).toBe(true);
    await t.send({ name: 'settings.set', scope: 'user', values: { private: 'off' } }, actor('u3'));
    expect(await t.bot.privateReplies(actor('u3'))).toBe(false);
  });
});
