/**
 * A Slack job that another front takes over (its first front stopped): the status message the first front posted is
 * kept in the job's route as soon as it is posted, and the conversation rebuilt from that route edits it into the
 * reply, so the channel shows one message per job, not a stale "working" one beside a new one. A front that lost the
 * job's settlement to another front (an `answeredElsewhere` reply) leaves that message alone. Against the fake Slack's
 * Web API, through the same WebClient Bolt gives the adapter.
 */
import { webApi } from '@slack/bolt';
import { reconnectSlack, SlackConversation } from '../../../adapters/slack/slack.conversation.js';
import type { Reply } from '../../../bot/types.js';
import { FakeSlack } from '../../fakes/slack/fake-slack.js';
import { solidPng } from '../../helpers/solid-png.js';

let slack: FakeSlack;
let client: webApi.WebClient;
const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

beforeAll(async () => {
  slack = await FakeSlack.start();
  client = new webApi.WebClient(slack.botToken, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } });
});
afterAll(async () => { await slack?.stop(); });

const options = (requestId: string) => ({ client, statusIntervalMs: 50, logger, requestId });
const imageReply = (jobId: string): Reply => ({
  text: 'a red square · seed 7', jobId,
  images: [{ name: `pictalk-${jobId}-1.png`, png: solidPng(8, [220, 30, 30]), altText: 'a red square', seed: 7 }],
});

async function until<T>(value: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const found = value();
    if (found !== undefined) return found;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A slash command's conversation that has posted its status message; the routes it reported. */
async function started(requestId: string): Promise<{ first: SlackConversation; routes: Array<Record<string, unknown>> }> {
  const channelId = slack.channels.general.id;
  const first = new SlackConversation({ channelId, userId: slack.users.alice.id }, options(requestId));
  const routes: Array<Record<string, unknown>> = [];
  first.watchRoute((route) => routes.push(route));
  first.status({ state: 'running', jobId: requestId, stage: 'denoise', step: 3, total: 10 });
  await until(() => routes[0]);
  return { first, routes };
}

test('the route gains the status message once it is posted, and a front taking the job over edits it into the reply', async () => {
  const { routes } = await started('req-a');
  const route = routes[0]!;
  const status = route.status as { channel: string; ts: string };
  expect(route).toMatchObject({ platform: 'slack', channelId: slack.channels.general.id, userId: slack.users.alice.id });
  expect(slack.message(status.channel, status.ts)?.text).toContain('denoise');

  // the first front stops here; another rebuilds the conversation from the stored route and finishes the job
  const taken = reconnectSlack(JSON.parse(JSON.stringify(route)) as Record<string, unknown>, options('req-a'))!;
  await taken.finish(imageReply('job-a'));
  const anchor = slack.message(status.channel, status.ts)!;
  expect(anchor.deleted).toBe(false);
  expect(anchor.text).toContain('Done');
  const upload = slack.completions.find((c) => (c.initial_comment ?? '').includes('seed 7') && c.thread_ts === status.ts);
  expect(upload).toBeDefined();
  // one top-level bot message for the job: the first front's, now the anchor
  const topLevel = slack.messages.filter((m) => m.user === slack.botUserId && !m.thread_ts && m.postedAt >= anchor.postedAt && !m.deleted);
  expect(topLevel.map((m) => m.ts)).toEqual([status.ts]);
});

test('a front that lost the job to another leaves the shared status message alone; one deleted meanwhile is posted anew', async () => {
  const { first, routes } = await started('req-b');
  const status = routes[0]!.status as { channel: string; ts: string };
  await first.finish({ text: '', silent: true, answeredElsewhere: true, jobId: 'job-b' });
  expect(slack.message(status.channel, status.ts)?.deleted).toBe(false);

  // someone deleted the status message before the taking-over front finished: the reply is a new message
  await client.chat.delete({ channel: status.channel, ts: status.ts });
  const taken = reconnectSlack(routes[0]!, options('req-b'))!;
  const receipt = await taken.finish(imageReply('job-b'));
  const anchorId = receipt.messageIds.find((id) => id.startsWith('msg:'))!;
  const anchorTs = anchorId.split(':')[2]!;
  expect(anchorTs).not.toBe(status.ts);
  expect(slack.message(status.channel, anchorTs)?.text).toContain('Done');
});
