import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corePort } from '../../../adapters/core.port.js';
import { Bot } from '../../../bot/bot.js';
import { SqliteStore } from '../../../bot/sqlite.store.js';
import type { BotCommand } from '../../../bot/types.js';
import { InferenceCore } from '../../../inference/core.js';
import { createMetricsRegistry } from '../../../inference/metrics.js';
import { loadTextToImage } from '../../../inference/text-to-image.pipeline.js';
import type { ImagineResult, JobResult } from '../../../inference/types.js';
import { ManualClock, RecordingConversation, actor, defaultResult, makeBot, moderator, request, silentLogger, type TestBot } from '../helpers.js';

const DAY = '2025-06-01';

/** The fake core's images, with the safety checker's flags the model folder would add (true = flagged). */
function flagging(flags: readonly boolean[]): (input: Parameters<typeof defaultResult>[0]) => JobResult {
  return (input) => {
    const result = defaultResult(input) as ImagineResult;
    return { ...result, images: result.images.map((image, i) => ({ ...image, nsfw: flags[i] ?? false })) };
  };
}

/** Send a command from a channel that is (or is not) age-restricted, as the Discord adapter reports it. */
async function sendIn(t: TestBot, command: BotCommand, ageRestricted: boolean, channelId = 'chan1'): Promise<RecordingConversation> {
  const conversation = new RecordingConversation();
  await t.bot.handle({ ...request(command), channelId, ageRestricted }, conversation);
  return conversation;
}

describe('/imagine with the model folder\'s safety checker', () => {
  it('withholds flagged images, charges only the ones posted, and describes only those', async () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 5, caption: 50 } });
    t.core.behaviour.imagine = flagging([false, true, false, true]);
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'two cats', count: 4, seed: 40 } })).reply;
    expect(reply.images?.map((image) => [image.name, image.seed, image.spoiler])).toEqual([
      [`pictalk-${reply.jobId}-1.png`, 40, undefined], [`pictalk-${reply.jobId}-3.png`, 42, undefined],
    ]);
    expect(reply.text).toBe('two cats\nseeds 40, 42 · 20 steps · guidance 7.5 · pndm · 64×64\n'
      + '2 of 4 images were withheld by the safety checker; the quota for them was refunded.');
    expect(t.core.of('caption').map((job) => job.input)).toEqual([
      { kind: 'caption', request: { image: Buffer.from('png:two cats:40') } }, { kind: 'caption', request: { image: Buffer.from('png:two cats:42') } },
    ]);
    expect(await t.store.usage('space1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 2, refunded: 0 });
    expect((await t.store.getJob(reply.jobId!))?.settings).toMatchObject({ withheld: 2 });
    // the two refunded units are room again: 3 more fit under the limit of 5, a fourth does not
    t.core.behaviour.imagine = flagging([]);
    expect((await t.send({ name: 'imagine', options: { prompt: 'x', count: 3 } })).reply.error).toBeUndefined();
    expect((await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply.error?.code).toBe('quota.exceeded');
  });

  it('posts nothing and refunds the whole job when every image is flagged', async () => {
    const t = makeBot();
    t.core.behaviour.imagine = flagging([true, true]);
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'two cats', count: 2 } })).reply;
    expect(reply.images).toBeUndefined();
    expect(reply.error).toBeUndefined();
    expect(reply.text).toBe('All 2 images were withheld by the safety checker, so nothing was posted. Your quota for them was refunded.');
    expect(reply.buttons).toEqual([{ action: 'reroll', jobId: reply.jobId, label: 'Reroll', style: 'primary' }]);
    expect(t.core.of('caption')).toHaveLength(0);
    expect(await t.store.usage('space1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 0, refunded: 2 });
    expect((await t.store.getJob(reply.jobId!))?.state).toBe('succeeded');
  });

  it('sends flagged images as spoilers only in spoiler mode and an age-restricted channel', async () => {
    const t = makeBot();
    t.core.behaviour.imagine = flagging([true, false]);
    const imagine: BotCommand = { name: 'imagine', options: { prompt: 'two cats', count: 2, seed: 7 } };
    // withhold is the default, age-restricted or not
    expect((await sendIn(t, imagine, true)).reply.images?.map((image) => image.seed)).toEqual([8]);
    expect((await t.send({ name: 'safety.set', mode: 'spoiler' }, moderator())).reply.text)
      .toBe('Images the safety checker flags are now sent as spoilers when the channel is age-restricted, and withheld otherwise, in this space.');
    // spoiler mode, but not an age-restricted channel: still withheld
    expect((await sendIn(t, imagine, false)).reply.images?.map((image) => image.seed)).toEqual([8]);
    // spoiler mode in an age-restricted channel: both posted, the flagged one as a spoiler, both charged
    const before = (await t.store.usage('space1', 'u1', 'imagine', DAY)).charged;
    const spoiled = (await sendIn(t, imagine, true)).reply;
    expect(spoiled.images?.map((image) => [image.seed, image.spoiler])).toEqual([[7, true], [8, undefined]]);
    expect(spoiled.text).not.toContain('withheld');
    expect((await t.store.usage('space1', 'u1', 'imagine', DAY)).charged).toBe(before + 2);
    // a channel's own mode wins over the space's
    expect((await t.send({ name: 'safety.set', mode: 'withhold', channelId: 'chan1' }, moderator())).reply.text)
      .toBe('Images the safety checker flags are now withheld, and their quota refunded, in channel chan1.');
    expect((await sendIn(t, imagine, true)).reply.images?.map((image) => image.seed)).toEqual([8]);
    expect((await sendIn(t, imagine, true, 'chan2')).reply.images?.map((image) => image.spoiler)).toEqual([true, undefined]);
  });

  it('keeps the age restriction in the job record for a front that finishes the job after a restart', async () => {
    const t = makeBot();
    t.core.manual = true;
    const pending = sendIn(t, { name: 'imagine', options: { prompt: 'x' } }, true);
    const [job] = await t.core.waitForJobs(1);
    expect((await t.store.getJob(job!.id))?.settings).toMatchObject({ ageRestricted: true });
    job!.cancel();
    await pending;
  });
});

describe('/safety', () => {
  it('is for moderators only, checks the mode, and audits changes', async () => {
    const t = makeBot();
    expect((await t.send({ name: 'safety.set', mode: 'spoiler' }, actor())).reply.error?.code).toBe('permission.denied');
    expect((await t.send({ name: 'safety.show' }, actor())).reply.error?.code).toBe('permission.denied');
    const bad = (await t.send({ name: 'safety.set', mode: 'blur' as never }, moderator())).reply;
    expect(bad.error?.code).toBe('input.invalid');
    expect(bad.text).toBe('Expected `mode` to be one of withhold, spoiler, got `"blur"` (string).');
    expect((await t.send({ name: 'safety.set', mode: 'spoiler', channelId: ' ' }, moderator())).reply.error?.code).toBe('input.invalid');
    expect(await t.store.listSettings('space1', 'safety.')).toEqual([]);

    await t.send({ name: 'safety.set', mode: 'spoiler' }, moderator());
    expect((await t.send({ name: 'safety.set', mode: 'spoiler' }, moderator())).reply.text).toContain('(unchanged)');
    await t.send({ name: 'safety.set', mode: 'withhold', channelId: 'C9' }, moderator());
    expect((await t.store.listAudit('space1')).map((entry) => [entry.action, entry.target, entry.before, entry.after])).toEqual([
      ['safety.set', 'channel C9', { mode: null }, { mode: 'withhold' }],
      ['safety.set', 'space', { mode: 'spoiler' }, { mode: 'spoiler' }],
      ['safety.set', 'space', { mode: null }, { mode: 'spoiler' }],
    ]);
  });

  it('shows the protection in force, the space\'s mode and each channel\'s', async () => {
    const t = makeBot({}, { safetyChecker: true });
    await t.send({ name: 'safety.set', mode: 'spoiler' }, moderator());
    await t.send({ name: 'safety.set', mode: 'withhold', channelId: 'C9' }, moderator());
    expect((await t.send({ name: 'safety.show' }, moderator())).reply).toEqual({
      text: [
        "Safety: the model's safety checker is on; flagged images are sent as spoilers in age-restricted channels and withheld elsewhere.",
        'Space mode: spoiler.',
        'Channel modes:',
        '• channel C9: withhold',
      ].join('\n'),
      ephemeral: true,
    });
  });

  it('/pictalk says which protection is active: the model\'s checker or none, and the mode here', async () => {
    const lastLine = async (t: TestBot, ageRestricted = false): Promise<string> => (await sendIn(t, { name: 'status' }, ageRestricted)).reply.text.split('\n').at(-1)!;
    const checked = makeBot({}, { safetyChecker: true });
    expect(await lastLine(checked)).toBe("Safety: the model's safety checker is on; flagged images are withheld and their quota refunded.");
    await checked.send({ name: 'safety.set', mode: 'spoiler' }, moderator());
    expect(await lastLine(checked, true)).toBe("Safety: the model's safety checker is on; flagged images are sent as spoilers "
      + 'in age-restricted channels and withheld elsewhere (this channel is age-restricted).');
    expect(await lastLine(makeBot({}, { safetyChecker: false }))).toBe('Safety: the model has no safety checker, so images are not checked.');
  });
});

describe('the real pipeline with a checker in its folder, through the real core and bot/', () => {
  it('withholds exactly the images the checker flags and charges the others', async () => {
    // tests/fixtures/tiny-sd plus the tiny checker (tests/fixtures/tiny-safety), which flags some of these pictures
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-bot-safety-'));
    cpSync(join(process.cwd(), 'tests/fixtures/tiny-sd'), dir, { recursive: true });
    for (const name of ['safety_checker', 'feature_extractor']) cpSync(join(process.cwd(), 'tests/fixtures/tiny-safety', name), join(dir, name), { recursive: true });
    const pipeline = await loadTextToImage(dir);
    const core = new InferenceCore({
      imagine: (req, options) => pipeline.imagine(req, options),
      captionBatch: async (requests) => requests.map(() => ({ kind: 'caption' as const, caption: 'A picture.', tokens: [], score: 0, timingsMs: {} })),
      speak: async () => { throw new Error('not used'); },
    }, { registry: createMetricsRegistry() });
    const store = new SqliteStore(':memory:');
    try {
      const options = { prompt: 'a small red circle to the left of a big cat', seed: 0, steps: 2, count: 4 };
      const direct = await pipeline.imagine(options);
      const flagged = direct.images.filter((image) => image.nsfw).map((image) => image.seed);
      expect(flagged.length).toBeGreaterThan(0);
      expect(flagged.length).toBeLessThan(4);
      const bot = new Bot({ store, core: corePort(core), clock: new ManualClock(), logger: silentLogger, safetyChecker: true });
      const conversation = new RecordingConversation();
      await bot.handle(request({ name: 'imagine', options }), conversation);
      const { reply } = conversation;
      expect(reply.images?.map((image) => image.seed)).toEqual(direct.images.filter((image) => !image.nsfw).map((image) => image.seed));
      expect(reply.images?.every((image, i) => image.png.equals(direct.images.find((d) => d.seed === reply.images![i]!.seed)!.png))).toBe(true);
      expect(reply.text).toContain(`${flagged.length} of 4 images`);
      expect(await store.usage('space1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 4 - flagged.length, refunded: 0 });
    } finally {
      await core.close();
      await pipeline.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);
});
