import { actor, makeBot, moderator, RecordingConversation, request } from '../helpers.js';

describe('cancel', () => {
  it('lets the requester cancel a queued job: the core cancels, the quota is refunded, the reply says cancelled', async () => {
    const t = makeBot();
    t.core.manual = true;
    const pending = t.send({ name: 'imagine', options: { prompt: 'x', count: 3 } });
    const [job] = await t.core.waitForJobs(1);
    const cancel = (await t.send({ name: 'cancel', jobId: job!.id })).reply;
    expect(cancel.text).toBe(`Cancelling job ${job!.id}; its quota will be refunded.`);
    expect(job!.cancelled).toBe(true);
    const original = (await pending).reply;
    expect(original.error?.code).toBe('job.cancelled');
    expect(original.text).toBe('Cancelled. Your quota was refunded.');
    expect(original.jobId).toBe(job!.id);
    expect((await t.store.getJob(job!.id))?.state).toBe('cancelled');
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01'))).toEqual({ reserved: 0, charged: 0, refunded: 3 });
  });

  it('honours a cancel that races the result', async () => {
    const t = makeBot();
    t.core.manual = true;
    const pending = t.send({ name: 'imagine', options: { prompt: 'x' } });
    const [job] = await t.core.waitForJobs(1);
    job!.cancel = async () => true;           // the result is on its way, so this core can no longer cancel it ...
    await t.send({ name: 'cancel', jobId: job!.id });
    job!.resolve();                     // ... and it arrives after the user was told the job is cancelled
    expect((await pending).reply.error?.code).toBe('job.cancelled');
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).refunded).toBe(1);
  });

  it('denies other users and lets a moderator cancel, audited', async () => {
    const t = makeBot({ moderatorRoleIds: ['mods'] });
    t.core.manual = true;
    const pending = t.send({ name: 'imagine', options: { prompt: 'x' } });
    const [job] = await t.core.waitForJobs(1);
    const denied = (await t.send({ name: 'cancel', jobId: job!.id }, actor('u2'))).reply;
    expect(denied.error).toEqual({ code: 'permission.denied', retryable: false });
    expect(denied.text).toBe('Only the person who asked for it or a moderator can cancel that.');
    const mod = actor('m1', { roleIds: ['mods'] });
    expect((await t.send({ name: 'cancel', jobId: job!.id }, mod)).reply.error).toBeUndefined();
    expect((await pending).reply.error?.code).toBe('job.cancelled');
    expect((await t.store.listAudit('space1'))[0]).toMatchObject({ actorId: 'm1', action: 'job.cancel', target: `job ${job!.id} of user u1` });
  });

  it('says when there is nothing left to cancel', async () => {
    const t = makeBot();
    const done = (await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply;
    expect((await t.send({ name: 'cancel', jobId: done.jobId! })).reply.text).toBe(`Job ${done.jobId} has already finished (succeeded); nothing to cancel.`);
    expect((await t.send({ name: 'cancel', jobId: 'nope' })).reply.error?.code).toBe('input.invalid');
  });
});

describe('delete', () => {
  it('returns a delete action with the message ids the adapter reported', async () => {
    const t = makeBot();
    const c = new RecordingConversation();
    c.receipt = { messageIds: ['m-100', 'm-101'] };
    await t.bot.handle(request({ name: 'imagine', options: { prompt: 'x' } }), c);
    const jobId = c.reply.jobId!;
    expect((await t.store.getJob(jobId))?.messageIds).toEqual(['m-100', 'm-101']);
    const reply = (await t.send({ name: 'delete', jobId })).reply;
    expect(reply.action).toEqual({ kind: 'delete', jobId, messageIds: ['m-100', 'm-101'] });
    expect(reply.ephemeral).toBe(true);
  });

  it('is for the requester or a moderator only', async () => {
    const t = makeBot();
    const jobId = (await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply.jobId!;
    const denied = (await t.send({ name: 'delete', jobId }, actor('u2'))).reply;
    expect(denied.error?.code).toBe('permission.denied');
    expect(denied.action).toBeUndefined();
    expect((await t.send({ name: 'delete', jobId }, moderator())).reply.action?.kind).toBe('delete');
    expect((await t.store.listAudit('space1'))[0]).toMatchObject({ action: 'job.delete', actorId: 'mod' });
  });
});
