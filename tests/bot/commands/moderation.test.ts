import type { BotCommand } from '../../../bot/types.js';
import { actor, makeBot, moderator } from '../helpers.js';

const moderatorCommands: BotCommand[] = [
  { name: 'quota.set', target: { kind: 'default' }, kind: 'imagine', limit: 3 },
  { name: 'quota.show' },
  { name: 'quota.reset', target: { kind: 'user', id: 'u1' } },
  { name: 'blocklist.add', pattern: 'x' },
  { name: 'blocklist.remove', pattern: 'x' },
  { name: 'blocklist.list' },
  { name: 'autocaption.set', channelId: 'C1', enabled: true },
];

describe('moderator commands', () => {
  it.each(moderatorCommands.map((command) => [command.name, command] as const))('%s is denied to a non-moderator and changes nothing', async (name, command) => {
    const t = makeBot({ moderatorRoleIds: ['mods'] });
    const reply = (await t.send(command, actor('u9', { roleIds: ['members'] }))).reply;
    expect(reply.error).toEqual({ code: 'permission.denied', retryable: false });
    expect(reply.text).toBe(`Only moderators can use \`${name}\`.`);
    expect(reply.ephemeral).toBe(true);
    expect((await t.store.listAudit('space1'))).toEqual([]);
    expect((await t.store.listLimits('space1'))).toEqual([]);
  });

  it('accepts a configured moderator role as well as the platform flag', async () => {
    const t = makeBot({ moderatorRoleIds: ['mods'] });
    expect((await t.send({ name: 'blocklist.list' }, actor('u', { roleIds: ['mods'] }))).reply.error).toBeUndefined();
    expect((await t.send({ name: 'blocklist.list' }, moderator())).reply.error).toBeUndefined();
  });

  it('audits quota.set with who, what, when, before and after', async () => {
    const t = makeBot();
    t.clock.ms = 1_750_000_000_000;
    const mod = moderator('m1');
    expect((await t.send({ name: 'quota.set', target: { kind: 'role', id: 'r1' }, kind: 'imagine', limit: 10 }, mod)).reply.text)
      .toBe('Daily imagine limit for role r1 is now 10 (not set before).');
    expect((await t.send({ name: 'quota.set', target: { kind: 'role', id: 'r1' }, kind: 'imagine', limit: 12 }, mod)).reply.text)
      .toBe('Daily imagine limit for role r1 is now 12 (was 10).');
    expect((await t.store.listAudit('space1'))).toEqual([
      { id: 2, spaceId: 'space1', actorId: 'm1', action: 'quota.set', target: 'role r1 imagine', before: { limit: 10 }, after: { limit: 12 }, at: 1_750_000_000_000 },
      { id: 1, spaceId: 'space1', actorId: 'm1', action: 'quota.set', target: 'role r1 imagine', before: null, after: { limit: 10 }, at: 1_750_000_000_000 },
    ]);
  });

  it('validates quota.set input', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'quota.set', target: { kind: 'user', id: 'u1' }, kind: 'imagine', limit: -1 }, moderator())).reply;
    expect(reply.text).toBe('Expected `limit` to be an integer from 0 to 100000, got `-1` (number).');
    expect((await t.send({ name: 'quota.set', target: { kind: 'user', id: ' ' }, kind: 'imagine', limit: 1 }, moderator())).reply.error?.code).toBe('input.invalid');
  });

  it('resets a user day, keeps jobs in flight exact, and audits it', async () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 2 } });
    await t.send({ name: 'imagine', options: { prompt: 'a', count: 2 } });
    expect((await t.send({ name: 'imagine', options: { prompt: 'b' } })).reply.error?.code).toBe('quota.exceeded');
    const reply = (await t.send({ name: 'quota.reset', target: { kind: 'user', id: 'u1' } }, moderator())).reply;
    expect(reply.text).toBe("Reset today's usage for user u1 (2 images, 0 captions given back).");
    expect((await t.store.listAudit('space1'))[0]).toMatchObject({ action: 'quota.reset', target: 'user u1', before: { imagine: 2, caption: 0 }, after: { imagine: 0, caption: 0 } });
    expect((await t.send({ name: 'imagine', options: { prompt: 'c' } })).reply.images).toHaveLength(1);
  });

  it('shows limits and a user usage', async () => {
    const t = makeBot();
    const mod = moderator();
    await t.send({ name: 'quota.set', target: { kind: 'user', id: 'u1' }, kind: 'caption', limit: 4 }, mod);
    await t.send({ name: 'imagine', options: { prompt: 'a' } });
    expect((await t.send({ name: 'quota.show' }, mod)).reply.text).toBe('Built-in defaults: 20 images, 50 captions a day.\nuser u1: 4 captions a day (set by mod).');
    expect((await t.send({ name: 'quota.show', target: { kind: 'user', id: 'u1' } }, mod)).reply.text).toBe([
      'user u1 imagine: not set.', 'user u1 caption: 4 captions a day.',
      'Used today (imagine): 1 charged, 0 in flight, 0 refunded.', 'Used today (caption): 0 charged, 0 in flight, 0 refunded.',
    ].join('\n'));
  });

  it('audits blocklist changes and rejects an invalid pattern without storing it', async () => {
    const t = makeBot();
    const mod = moderator();
    expect((await t.send({ name: 'blocklist.add', pattern: '/a(/' }, mod)).reply.error?.code).toBe('input.invalid');
    expect((await t.send({ name: 'blocklist.add', pattern: 'Dragon' }, mod)).reply.text).toBe('Added `dragon` to the blocklist (word).');
    expect((await t.send({ name: 'blocklist.add', pattern: 'dragon' }, mod)).reply.text).toBe('`dragon` is already on the blocklist.');
    await t.send({ name: 'blocklist.remove', pattern: 'dragon' }, mod);
    expect((await t.store.listAudit('space1')).map((entry) => [entry.action, entry.target, entry.before, entry.after])).toEqual([
      ['blocklist.remove', 'dragon', { pattern: 'dragon' }, null],
      ['blocklist.add', 'dragon', null, { pattern: 'dragon' }],
    ]);
  });

  it('sets Slack auto-caption channels, audited, and answers isAutoCaptionChannel', async () => {
    const t = makeBot();
    const mod = moderator();
    expect((await t.send({ name: 'autocaption.set', channelId: 'C1', enabled: true }, mod)).reply.text).toBe('Auto-caption is now on in channel C1.');
    expect(await t.bot.isAutoCaptionChannel('space1', 'C1')).toBe(true);
    expect(await t.bot.isAutoCaptionChannel('space2', 'C1')).toBe(false);
    await t.send({ name: 'autocaption.set', channelId: 'C1', enabled: false }, mod);
    expect(await t.bot.isAutoCaptionChannel('space1', 'C1')).toBe(false);
    expect((await t.store.listAudit('space1'))[0]).toMatchObject({ action: 'autocaption.set', target: 'channel C1', before: { enabled: true }, after: { enabled: false } });
  });
});

describe('/status', () => {
  it('shows the queue, your jobs and your usage, ephemerally', async () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 20, caption: 50 } });
    t.clock.ms = Date.UTC(2025, 5, 1, 18, 30);
    t.core.manual = true;
    const pending = t.send({ name: 'imagine', options: { prompt: 'x', count: 2 } });
    const [job] = await t.core.waitForJobs(1);
    const reply = (await t.send({ name: 'status' })).reply;
    expect(reply.ephemeral).toBe(true);
    expect(reply.text).toBe([
      'Queue: 1 waiting, 0 running.',
      `Your imagine job ${job!.id}: waiting, position 1.`,
      'Today you have used 2 of 20 images and 0 of 50 captions; it resets at 00:00 UTC (in 5 h 30 min).',
      "Safety: the inference workers' model folder decides whether images are checked; flagged images are withheld and their quota refunded.",
    ].join('\n'));
    job!.cancel();
    await pending;
  });
});
