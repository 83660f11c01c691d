/**
 * Load and faults, end to end, across BOTH platforms at once: 200 commands from 20 users (10 on the fake Discord, 10 on
 * the fake Slack) through the real adapters, ONE real Bot on a SQLite file and ONE real InferenceCore whose fake
 * pipelines return real artefacts and fail on purpose (throws, hangs that only the job timeout ends).
 *
 * Everything is checked exactly, per command: acknowledged within the platform deadline; every request reaches bot/ at
 * most once (repeated deliveries included) and gets exactly one final reply, on the platform, that matches its job
 * row; every accepted job ends in a result or a clear failure; the usage ledger on disk charges exactly what was
 * delivered and refunds exactly what failed or was cancelled, with nothing left reserved and nobody over the limit;
 * the core's queue is empty at the end. A summary line goes to the console and to runs/load-summary.log.
 *
 * Seed: PICTALK_LOAD_SEED (the plan and the injected faults are seeded; thread timing still varies run to run).
 * Slow (about 15 s): 200 commands through both fake platforms, with job timeouts that must actually expire.
 */
import type { APIMessage } from 'discord.js';
import { SqliteStore } from '../../bot/sqlite.store.js';
import type { Reply } from '../../bot/types.js';
import { sniffFormat } from '../../inference/image.codec.js';
import { toMrkdwn } from '../../adapters/slack/slack.conversation.js';
import { MessageFlag } from '../fakes/discord/fake-discord.payloads.js';
import { seededRandom, type FaultPlan } from './load.pipelines.js';
import { percentile, publish, tally, type LoadSummary } from './load.report.js';
import { planTraffic, reachesBot, tag, TrafficDriver, type PlannedCommand, type SentCommand } from './load.traffic.js';
import { startWorld, type LoadWorld } from './load.world.js';

const SEED = Number(process.env.PICTALK_LOAD_SEED ?? 20_250_611);
const USERS_PER_PLATFORM = 10;
const LIMITS = { imagine: 6, caption: 3 } as const;
const FAULTS: FaultPlan = { imagineFail: 0.15, imagineHang: 0.05, captionFail: 0.1, captionHang: 0.03, speakFail: 0.05 };
/** Short job limits, so hung calls end quickly; a [slow] imagine (8 x 150 ms) fits under the imagine limit. */
const TIMEOUTS = { imagine: 2000, caption: 1000, speak: 1000 } as const;
const ACK_DEADLINE_MS = 3000;   // Discord: initial response within 3 s of dispatch; Slack: envelope ack within 3 s
const WAVE_MS = 1000;
const JITTER_MS = 400;

const CALLBACK = 'POST /interactions/:id/:token/callback';
const EDIT = 'PATCH /webhooks/:app/:token/messages/@original';
const FOLLOW_UP = 'POST /webhooks/:app/:token';
const DELETE_ORIGINAL = 'DELETE /webhooks/:app/:token/messages/@original';
const isStatusText = (text: string): boolean => /^(⏳|🎨)/.test(text);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let world: LoadWorld;

beforeAll(async () => {
  world = await startWorld({
    random: seededRandom(SEED + 1),
    faults: FAULTS,
    usersPerPlatform: USERS_PER_PLATFORM,
    statusIntervalMs: 250,
    botConfig: {
      defaultDailyLimits: { ...LIMITS },
      // The per-user rate limit is tested elsewhere; here it would only turn quota checks into rate refusals.
      rateLimit: { capacity: 1000, windowMs: 1000 },
      jobTimeoutMs: { ...TIMEOUTS },
    },
    coreOptions: { concurrency: { imagine: 2, caption: 1, speak: 1 }, timeoutMs: { ...TIMEOUTS } },
  });
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

/** What one command came to, as bot/ and the platform saw it. */
interface Outcome {
  sent: SentCommand;
  reply?: Reply;
  job?: JobRow;
  /** Units this user received on the platform (images, or one caption). */
  deliveredUnits: number;
  e2eMs?: number;
}

interface JobRow { id: string; request_id: string; requester_id: string; kind: 'imagine' | 'caption'; state: string; error_code: string | null; settings: string }
interface LedgerRow { job_id: string; user_id: string; kind: 'imagine' | 'caption'; units: number; state: string }

test('200 commands from 20 users on Discord and Slack, with injected faults: acked in time, one reply each, quotas exact', async () => {
  const wallStart = Date.now();
  const plan = planTraffic(seededRandom(SEED), { users: USERS_PER_PLATFORM, waveMs: WAVE_MS, jitterMs: JITTER_MS });
  expect(plan).toHaveLength(200);
  const driver = new TrafficDriver(world, seededRandom(SEED + 2));
  const { discord, slack, recorder } = world;

  // ---- send: each command at its time, as independent users would --------------------------------------------
  const t0 = Date.now();
  const sendErrors: string[] = [];
  await Promise.all(plan.map(async (command) => {
    await sleep(Math.max(0, t0 + command.offsetMs - Date.now()));
    await driver.send(command).catch((error: unknown) => { sendErrors.push(`cmd ${command.n}: ${String(error)}`); });
  }));
  expect(sendErrors).toEqual([]);
  const sent = plan.map((command) => driver.sent.get(command.n)!);

  // ---- drain: every command answered, the core idle ------------------------------------------------------------
  const botLevel = sent.filter((s) => reachesBot(s.planned));
  const unfinished = (): string[] => [
    ...botLevel.filter((s) => !recorder.records.get(s.requestId)?.finishes.some((f) => f.deliveredAt || f.failed) || !recorder.records.get(s.requestId)?.outcome)
      .map((s) => `cmd ${s.planned.n} (${s.planned.platform} ${s.planned.kind})`),
    ...sent.filter((s) => s.planned.platform === 'discord' && !s.interaction!.response).map((s) =>
      `cmd ${s.planned.n}: no Discord response (dispatched at +${s.interaction!.dispatchedAt - t0} ms; calls: ${discord.callsFor(s.interaction!).map((c) => `${c.route} ${c.status} at +${c.at - t0} ms`).join(', ') || 'none'})`),
    ...slack.socket.envelopes.filter((e) => !e.ack).map((e) => `envelope ${e.envelope_id}: no ack`),
  ];
  const coreBusy = (): boolean => {
    const stats = world.core.stats();
    return Object.values(stats.queued).some((n) => n > 0) || Object.values(stats.running).some((n) => n > 0);
  };
  const slackAdapterAnswers = sent.filter((s) => s.planned.platform === 'slack' && !reachesBot(s.planned)).length;
  const drainDeadline = Date.now() + 45_000;
  while ((unfinished().length > 0 || coreBusy() || slack.ephemerals.length < slackAdapterAnswers) && Date.now() < drainDeadline) await sleep(50);
  // Nothing silently dropped: a request that never got its reply is named here (with the adapters' warnings).
  if (unfinished().length > 0) console.warn(`[load] adapter warnings:\n${world.logs.warn.slice(0, 40).join('\n')}`);
  expect(unfinished()).toEqual([]);
  // A quiet moment: a late second reply, status edit or upload would land now and be caught below.
  await sleep(750);
  const wallMs = Date.now() - wallStart;

  // ---- the ledger and the jobs, read back from the file through a second connection ----------------------------
  const reader = new SqliteStore(world.dbPath);
  const jobs = reader.db.prepare('SELECT id, request_id, requester_id, kind, state, error_code, settings FROM jobs').all() as JobRow[];
  const ledger = reader.db.prepare('SELECT job_id, user_id, kind, units, state FROM usage_ledger').all() as LedgerRow[];
  reader.close();
  const jobByRequest = new Map(jobs.map((job) => [job.request_id, job]));

  const problems: string[] = [];
  const problem = (command: PlannedCommand, text: string): void => { problems.push(`cmd ${command.n} (${command.platform} ${command.kind}): ${text}`); };
  // Whole-run checks are collected too, so one run reports everything it found and the summary is always printed.
  // Compared as JSON: rows from the SQLite driver are arrays of the main realm, not of Jest's test realm.
  const same = (what: string, actual: unknown, expected: unknown): void => {
    const [got, want] = [JSON.stringify(actual), JSON.stringify(expected)];
    if (got !== want) problems.push(`${what}: expected ${want}, got ${got}`.slice(0, 2000));
  };

  // ---- 1. acknowledgements within the deadline ----------------------------------------------------------------
  let ackMaxDiscord = 0;
  for (const s of sent.filter((x) => x.planned.platform === 'discord')) {
    const interaction = s.interaction!;
    const callbacks = discord.callsFor(interaction, CALLBACK);
    if (callbacks.length !== 1 || callbacks[0]!.status >= 300) problem(s.planned, `expected one successful callback, got ${callbacks.map((c) => c.status).join(',') || 'none'}`);
    const latency = interaction.response ? interaction.response.at - interaction.dispatchedAt : Number.POSITIVE_INFINITY;
    ackMaxDiscord = Math.max(ackMaxDiscord, latency);
    if (latency > ACK_DEADLINE_MS) problem(s.planned, `Discord callback after ${latency} ms`);
  }
  const failedDiscordCalls = discord.calls.filter((call) => call.status >= 400 || call.status === 0);
  same('Discord calls that failed', failedDiscordCalls.map((call) => `${call.route} ${call.status} ${JSON.stringify(call.body ?? {}).slice(0, 120)}`), []);
  let ackMaxSlack = 0;
  for (const envelope of slack.socket.envelopes) {
    const latency = envelope.ack?.latencyMs ?? Number.POSITIVE_INFINITY;
    ackMaxSlack = Math.max(ackMaxSlack, latency);
    if (latency > ACK_DEADLINE_MS) problems.push(`Slack envelope ${envelope.type} acked after ${latency} ms`);
  }
  same('Slack acks for unknown envelopes', slack.socket.strayAcks, []);
  same('Slack calls that failed', slack.calls.filter((call) => call.status !== 200 || call.error).map((call) => `${call.method}: ${call.status} ${call.error}`), []);

  // ---- 2. bot/ saw each request once, and answered it once ----------------------------------------------------
  const outcomes: Outcome[] = [];
  for (const s of sent) {
    const record = recorder.records.get(s.requestId);
    const outcome: Outcome = { sent: s, deliveredUnits: 0 };
    outcomes.push(outcome);
    if (!reachesBot(s.planned)) {
      if (record) problem(s.planned, 'reached bot/ although the adapter should have answered it');
      continue;
    }
    if (!record) { problem(s.planned, 'never reached bot/'); continue; }
    if (record.handleCalls !== 1) problem(s.planned, `bot.handle called ${record.handleCalls} times`);
    if (record.outcome?.duplicate) problem(s.planned, 'bot/ saw it as a duplicate');
    if (record.finishes.length !== 1) problem(s.planned, `finish called ${record.finishes.length} times`);
    const finish = record.finishes[0]!;
    if (finish.failed || !finish.deliveredAt) problem(s.planned, `the adapter failed to deliver the reply: ${finish.failed}`);
    outcome.reply = finish.reply;
    outcome.e2eMs = (finish.deliveredAt ?? finish.at) - s.sentAt;
    const job = jobByRequest.get(s.requestId);
    if (job) outcome.job = job;
  }
  // Repeated deliveries and stale buttons never reached bot/ a second time.
  same('requests that reached bot/', recorder.records.size, botLevel.length);

  // ---- 3. each reply matches its job row and the command's kind -----------------------------------------------
  const units = (s: SentCommand): number => (s.planned.kind === 'imagine' ? s.planned.count ?? 1 : 1);
  for (const o of outcomes) {
    const { planned } = o.sent;
    const reply = o.reply;
    if (!reachesBot(planned) || !reply) continue;
    const code = reply.error?.code;
    if (o.job) {
      if (!['imagine', 'caption'].includes(planned.kind)) problem(planned, `a ${planned.kind} command created job ${o.job.id}`);
      if (reply.jobId !== o.job.id) problem(planned, `reply names job ${reply.jobId}, the row is ${o.job.id}`);
      if (o.job.state === 'succeeded') {
        if (code) problem(planned, `job succeeded but the reply is an error (${code})`);
        if (planned.kind === 'imagine' && reply.images?.length !== units(o.sent)) problem(planned, `expected ${units(o.sent)} images, got ${reply.images?.length}`);
        if (planned.kind === 'caption' && !reply.text) problem(planned, 'empty caption');
      } else if (o.job.state === 'failed' || o.job.state === 'cancelled') {
        if (code !== o.job.error_code) problem(planned, `job ${o.job.state} with ${o.job.error_code}, reply code ${code}`);
        if (!['inference.failed', 'job.timeout', 'job.cancelled', 'queue.busy'].includes(code ?? '')) problem(planned, `unexpected failure code ${code}`);
        if ((o.job.state === 'cancelled') !== (code === 'job.cancelled')) problem(planned, `state ${o.job.state} with code ${code}`);
      } else {
        problem(planned, `job left in state ${o.job.state}`);
      }
      continue;
    }
    const expectedRefusal: Partial<Record<PlannedCommand['kind'], string[]>> = {
      'imagine': ['quota.exceeded'], 'caption': ['quota.exceeded'], 'imagine.invalid': ['input.invalid'], 'caption.unsupported': ['input.unsupported'],
    };
    if (planned.kind === 'status') {
      if (code || !reply.ephemeral || !reply.text.includes('Today you have used')) problem(planned, `unexpected status reply ${JSON.stringify(reply.text)}`);
    } else if (planned.kind === 'cancel') {
      if (code || !reply.ephemeral || !/^(Cancelling job|Job .* has already finished)/.test(reply.text)) problem(planned, `unexpected cancel reply ${JSON.stringify(reply.text)}`);
    } else if (!code || !expectedRefusal[planned.kind]?.includes(code)) {
      problem(planned, `no job, and reply ${code ?? 'without error'}: ${reply.text}`);
    }
  }

  // Cancels: "Cancelling" means the target ends cancelled and refunded; "already finished" means it did not.
  let effectiveCancels = 0;
  for (const o of outcomes.filter((x) => x.sent.planned.kind === 'cancel')) {
    const target = outcomes[o.sent.planned.target!]!;
    const cancelling = o.reply?.text.startsWith('Cancelling') ?? false;
    if (cancelling) effectiveCancels++;
    if (target.job?.id !== o.sent.cancel?.jobId) problem(o.sent.planned, `cancelled job ${o.sent.cancel?.jobId}, the target's is ${target.job?.id}`);
    if (cancelling !== (target.job?.state === 'cancelled')) problem(o.sent.planned, `answer ${JSON.stringify(o.reply?.text)} but the target ended ${target.job?.state}`);
  }

  // ---- 4. the reply on the platform: exactly one final message per request ------------------------------------
  const slackChannel = slack.channels.general.id;
  const expectedEphemerals: string[] = [];
  for (const o of outcomes) {
    const { planned } = o.sent;
    const reply = o.reply;
    if (planned.platform === 'discord') {
      const interaction = o.sent.interaction!;
      if (!reply) {
        // Answered by the adapter: an immediate ephemeral message, nothing else.
        if (interaction.response?.type !== 4 || !interaction.response.ephemeral) problem(planned, `expected an immediate ephemeral answer, got ${JSON.stringify(interaction.response)}`);
        if (discord.callsFor(interaction).length !== 1) problem(planned, `expected only the answer, got ${discord.callsFor(interaction).map((c) => c.route).join(', ')}`);
        continue;
      }
      const finals = discord.callsFor(interaction, EDIT).filter((c) => !isStatusText(String(c.body?.content ?? '')));
      const followUps = discord.callsFor(interaction, FOLLOW_UP);
      const voices = followUps.filter((c) => Number(c.body?.flags ?? 0) & MessageFlag.IsVoiceMessage);
      const texts = followUps.filter((c) => !(Number(c.body?.flags ?? 0) & MessageFlag.IsVoiceMessage));
      const publicDeferral = !interaction.response?.ephemeral;
      // A button press is a deferred update (type 6): the message it sits on stays, and the answer is a follow-up.
      const deferredUpdate = interaction.response?.type === 6;
      if ((reply.error || reply.ephemeral) && publicDeferral) {
        // Errors go to the requester alone: the public "thinking..." message is removed, an ephemeral follow-up sent.
        if (finals.length !== 0 || texts.length !== 1) problem(planned, `expected one ephemeral follow-up, got ${finals.length} final edits and ${texts.length} follow-ups`);
        else if (!(Number(texts[0]!.body?.flags) & MessageFlag.Ephemeral) || texts[0]!.body?.content !== reply.text) problem(planned, 'the follow-up is not the ephemeral reply');
        const removed = discord.callsFor(interaction, DELETE_ORIGINAL).length;
        if (removed !== (deferredUpdate ? 0 : 1)) problem(planned, deferredUpdate ? 'the message the button sits on was removed' : 'the deferred reply was not removed');
      } else {
        if (finals.length !== 1 || texts.length !== 0) { problem(planned, `expected one final edit, got ${finals.length} and ${texts.length} follow-ups`); continue; }
        const final = finals[0]!;
        if (final.body?.content !== reply.text) problem(planned, `final text ${JSON.stringify(final.body?.content)} is not the reply`);
        const pngs = final.files.filter((file) => sniffFormat(file.data) === 'png');
        if (pngs.length !== (reply.images?.length ?? 0) || final.files.length !== pngs.length) problem(planned, `expected ${reply.images?.length ?? 0} PNGs, got ${final.files.length} files`);
        const described = (final.body?.attachments as Array<{ description?: string }> | undefined) ?? [];
        if (pngs.length > 0 && described.some((a) => !a.description)) problem(planned, 'an image without alt text');
        if (!reply.error && o.job?.state === 'succeeded') o.deliveredUnits = planned.kind === 'imagine' ? pngs.length : 1;
      }
      const expectedVoices = reply.voice ? 1 : 0;
      if (voices.length !== expectedVoices) problem(planned, `expected ${expectedVoices} voice messages, got ${voices.length}`);
      if (voices.some((v) => v.files.length !== 1 || v.files[0]!.data.subarray(0, 4).toString() !== 'OggS')) problem(planned, 'a voice message that is not one Ogg file');
      continue;
    }
    // Slack
    if (!reply) continue; // the adapter's own answers are counted with the ephemerals below
    const tagged = slack.completions.filter((c) => (c.initial_comment ?? '').includes(tag(planned.n)));
    if (reply.error || reply.ephemeral) {
      expectedEphemerals.push(toMrkdwn(reply.error ? `⚠️ ${reply.text}` : reply.text));
      if (tagged.length > 0) problem(planned, 'an error reply, but images were uploaded too');
      if (o.sent.threadTs && slack.threadReplies(slackChannel, o.sent.threadTs).some((m) => !m.deleted && !m.files?.length)) problem(planned, 'an error reply, but a message stayed in the thread');
      continue;
    }
    if (planned.kind === 'imagine') {
      if (tagged.length !== 1) { problem(planned, `expected one upload of the images, got ${tagged.length}`); continue; }
      const files = tagged[0]!.files.map((f) => slack.uploads.get(f.id)!);
      const pngs = files.filter((upload) => upload.data && sniffFormat(upload.data) === 'png');
      if (pngs.length !== reply.images?.length || files.length !== pngs.length) problem(planned, `expected ${reply.images?.length} PNG uploads, got ${files.length}`);
      if (pngs.some((upload) => !upload.alt_text)) problem(planned, 'an image without alt text');
      const anchor = slack.message(tagged[0]!.channel_id!, tagged[0]!.thread_ts!);
      if (!anchor || anchor.deleted || !anchor.text.startsWith('✅')) problem(planned, `the anchor message reads ${JSON.stringify(anchor?.text)}`);
      o.deliveredUnits = pngs.length;
    } else if (planned.kind === 'caption') {
      const thread = slack.threadReplies(slackChannel, o.sent.threadTs!).filter((m) => !m.deleted);
      const texts = thread.filter((m) => !m.files?.length);
      if (texts.length !== 1 || texts[0]!.text !== toMrkdwn(reply.text)) problem(planned, `expected the caption once in the thread, got ${JSON.stringify(texts.map((m) => m.text))}`);
      const voices = slack.completions.filter((c) => c.thread_ts === o.sent.threadTs).flatMap((c) => c.files.map((f) => slack.uploads.get(f.id)!));
      if (voices.length !== (reply.voice ? 1 : 0)) problem(planned, `expected ${reply.voice ? 1 : 0} voice files, got ${voices.length}`);
      if (voices.some((v) => v.filename !== 'voice-message.ogg' || v.data?.subarray(0, 4).toString() !== 'OggS')) problem(planned, 'a voice file that is not Ogg');
      o.deliveredUnits = texts.length === 1 ? 1 : 0;
    } else {
      problem(planned, `a public reply to ${planned.kind}: ${reply.text}`);
    }
  }
  // Slack ephemerals: exactly the error and ephemeral replies of bot/, plus one answer per command the adapter refused.
  const pool = slack.ephemerals.map((e) => e.text);
  for (const text of expectedEphemerals) {
    const at = pool.indexOf(text);
    if (at < 0) problems.push(`Slack: the ephemeral ${JSON.stringify(text)} was never shown`);
    else pool.splice(at, 1);
  }
  same('Slack ephemerals besides bot/\'s replies', pool.length, slackAdapterAnswers);
  same('Slack adapter answers that are not warnings', pool.filter((text) => !text.startsWith('⚠️')), []);
  same('Slack ephemerals not sent through response_url', slack.ephemerals.filter((e) => e.via !== 'response_url').map((e) => e.text), []);

  // No status message left behind on either platform: every one became the result or was removed.
  const leftDiscord = [...discord.messages.values()].filter((m: APIMessage) => m.author.id === discord.botUser.id && (isStatusText(m.content) || ((m.flags ?? 0) & MessageFlag.Loading)));
  same('Discord status messages left behind', leftDiscord.map((m) => m.content), []);
  const leftSlack = slack.messages.filter((m) => m.user === slack.botUserId && !m.deleted && isStatusText(m.text));
  same('Slack status messages left behind', leftSlack.map((m) => m.text), []);

  // ---- 5. the core: one job per accepted request, sub-jobs only for successes, an empty queue -----------------
  const submits = world.counting.submits;
  const main = submits.filter((s) => !s.jobId.includes('.'));
  same('distinct job ids submitted', new Set(main.map((s) => s.jobId)).size, main.length);
  const submitted = new Set(main.map((s) => s.jobId));
  const rows = new Set(jobs.map((job) => job.id));
  same('job rows never submitted to the core', jobs.filter((job) => !submitted.has(job.id)).map((job) => `${job.id} ${job.kind} ${job.state} ${job.error_code}`), []);
  same('jobs submitted to the core without a job row', [...submitted].filter((id) => !rows.has(id)), []);
  for (const o of outcomes.filter((x) => x.job)) {
    const alt = submits.filter((s) => s.jobId.startsWith(`${o.job!.id}.alt`)).length;
    const voice = submits.filter((s) => s.jobId.startsWith(`${o.job!.id}.voice.`)).length;
    const ok = o.job!.state === 'succeeded';
    if (alt !== (ok && o.job!.kind === 'imagine' ? o.reply?.images?.length ?? 0 : 0)) problem(o.sent.planned, `${alt} alt-text jobs`);
    if (voice !== (ok && o.job!.kind === 'caption' ? 1 : 0)) problem(o.sent.planned, `${voice} voice jobs`);
  }
  const stats = world.core.stats();
  same('the core at the end', { queued: stats.queued, running: stats.running, users: stats.users }, {
    queued: { imagine: 0, caption: 0, speak: 0 }, running: { imagine: 0, caption: 0, speak: 0 }, users: {},
  });

  // ---- 6. quotas, exact to the unit, from the ledger on disk ---------------------------------------------------
  same('ledger rows vs. job rows', ledger.length, jobs.length);
  const ledgerByJob = new Map(ledger.map((row) => [row.job_id, row]));
  const sum = (rows: LedgerRow[], kind: string, state: string): number => rows.filter((r) => r.kind === kind && r.state === state).reduce((n, r) => n + r.units, 0);
  let usersAtImagineLimit = 0;
  let usersAtCaptionLimit = 0;
  const userIds = new Set(outcomes.filter((o) => o.job).map((o) => o.job!.requester_id));
  for (const userId of userIds) {
    const mine = outcomes.filter((o) => o.job?.requester_id === userId);
    const rows = ledger.filter((row) => row.user_id === userId);
    for (const kind of ['imagine', 'caption'] as const) {
      const delivered = mine.filter((o) => o.job!.kind === kind && o.job!.state === 'succeeded').reduce((n, o) => n + o.deliveredUnits, 0);
      const refundedUnits = mine.filter((o) => o.job!.kind === kind && o.job!.state !== 'succeeded').reduce((n, o) => n + units(o.sent), 0);
      const charged = sum(rows, kind, 'charged');
      const refunded = sum(rows, kind, 'refunded');
      const reserved = sum(rows, kind, 'reserved');
      if (charged !== delivered) problems.push(`user ${userId} ${kind}: charged ${charged}, delivered ${delivered}`);
      if (refunded !== refundedUnits) problems.push(`user ${userId} ${kind}: refunded ${refunded}, failed or cancelled ${refundedUnits}`);
      if (reserved !== 0) problems.push(`user ${userId} ${kind}: ${reserved} units still reserved`);
      if (charged > LIMITS[kind]) problems.push(`user ${userId} ${kind}: charged ${charged} over the limit ${LIMITS[kind]}`);
      if (charged === LIMITS[kind]) { if (kind === 'imagine') usersAtImagineLimit++; else usersAtCaptionLimit++; }
    }
  }
  for (const o of outcomes.filter((x) => x.job)) {
    const row = ledgerByJob.get(o.job!.id);
    const want = o.job!.state === 'succeeded' ? 'charged' : 'refunded';
    if (!row || row.state !== want || row.units !== units(o.sent)) problem(o.sent.planned, `ledger row ${JSON.stringify(row)}, expected ${want} ${units(o.sent)}`);
  }

  // ---- the summary ----------------------------------------------------------------------------------------------
  const accepted = outcomes.filter((o) => o.job);
  const refusals = outcomes.filter((o) => !o.job && o.reply?.error).map((o) => o.reply!.error!.code as string);
  const adapterRefusals = outcomes.filter((o) => !reachesBot(o.sent.planned)).map(() => 'adapter.refused');
  const e2e = outcomes.filter((o) => o.e2eMs !== undefined).map((o) => o.e2eMs!);
  const successE2e = accepted.filter((o) => o.job!.state === 'succeeded').map((o) => o.e2eMs!);
  const c = world.counters;
  const summary: LoadSummary = {
    seed: SEED,
    wallMs,
    commands: {
      sent: sent.length, discord: sent.filter((s) => s.planned.platform === 'discord').length, slack: sent.filter((s) => s.planned.platform === 'slack').length,
      duplicateDeliveries: sent.reduce((n, s) => n + s.duplicates, 0),
    },
    accepted: accepted.length,
    succeeded: accepted.filter((o) => o.job!.state === 'succeeded').length,
    failed: tally(accepted.filter((o) => o.job!.state !== 'succeeded').map((o) => o.job!.error_code ?? '?')),
    rejected: tally([...refusals, ...adapterRefusals]),
    answered: outcomes.filter((o) => !o.job && o.reply && !o.reply.error).length,
    cancels: {
      pressed: outcomes.filter((o) => o.sent.planned.kind === 'cancel').length, effective: effectiveCancels,
      fromStatusButton: tally(outcomes.filter((o) => o.sent.cancel?.fromStatus).map((o) => o.sent.planned.platform)),
    },
    ackMaxMs: { discord: ackMaxDiscord, slack: ackMaxSlack },
    e2eMs: { p50: percentile(e2e, 50), p95: percentile(e2e, 95), max: Math.max(...e2e), n: e2e.length },
    successE2eMs: { p50: percentile(successE2e, 50), p95: percentile(successE2e, 95), n: successE2e.length },
    quota: { usersAtImagineLimit, usersAtCaptionLimit, quotaRefusals: refusals.filter((code) => code === 'quota.exceeded').length },
    injected: {
      'imagine.thrown': c.imagine.failed, 'imagine.hung': c.imagine.hung, 'caption.items_failed': c.caption.failed,
      'caption.batches_hung': c.caption.hung, 'speak.thrown': c.speak.failed,
    },
    problems: problems.length,
  };
  publish(summary, process.cwd());

  expect(problems).toEqual([]);
  expect(world.logs.error).toEqual([]);
  // The run exercised what it claims to: faults of each kind, refusals of each kind, repeated deliveries, cancels.
  expect(summary.commands.duplicateDeliveries).toBe(6);
  expect(Object.keys(summary.failed)).toEqual(expect.arrayContaining(['inference.failed', 'job.timeout', 'job.cancelled']));
  expect(Object.keys(summary.rejected)).toEqual(expect.arrayContaining(['quota.exceeded', 'input.invalid', 'input.unsupported', 'adapter.refused']));
  expect(usersAtImagineLimit).toBeGreaterThan(0);
  // The requester finds the Cancel button on the status message on both platforms.
  expect(summary.cancels.fromStatusButton).toEqual({ discord: expect.any(Number), slack: expect.any(Number) });
}, 240_000);
