import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { startLocalAdapter } from '../../../adapters/local/local.adapter.js';
import { makeBot, type TestBot } from '../../bot/helpers.js';
import { until } from '../../helpers/until.js';

interface Session {
  t: TestBot;
  input: PassThrough;
  text: () => string;
  done: Promise<void>;
  outDir: string;
}

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'pictalk-local-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function session(t: TestBot = makeBot()): Session {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  const outDir = join(dir, 'out');
  const adapter = startLocalAdapter({ bot: t.bot, input, output, outDir });
  return { t, input, text: () => text, done: adapter.done, outDir };
}

const waitFor = async (check: () => boolean): Promise<void> => {
  if (!(await until(check, 10_000, 2))) throw new Error('condition never became true');
};

describe('local terminal adapter', () => {
  it('generates images into the output folder and prints their paths and progress', async () => {
    const s = session();
    s.input.end('/imagine a red circle --seed 5 --count 2\n');
    await s.done;
    const [job] = s.t.core.of('imagine');
    const first = join(s.outDir, `pictalk-${job!.id}-1.png`);
    const second = join(s.outDir, `pictalk-${job!.id}-2.png`);
    expect(readFileSync(first).toString()).toBe('png:a red circle:5');
    expect(existsSync(second)).toBe(true);
    expect(s.text()).toContain(`[${job!.id}] queued, position 1 (/cancel ${job!.id})`);
    expect(s.text()).toContain(`[${job!.id}] denoise 1/2`);
    expect(s.text()).toContain(`image: ${first} (seed 5) — A drawing of a red circle.`);
    expect(s.text()).toContain(`next: /reroll ${job!.id}   /vary ${job!.id} 1   /vary ${job!.id} 2   /delete ${job!.id}`);
  });

  it('captions a file and writes the voice message', async () => {
    const s = session();
    const file = join(dir, 'photo.png');
    writeFileSync(file, 'png:a blue square');
    s.input.end(`/caption ${file}\n`);
    await s.done;
    const [job] = s.t.core.of('caption');
    const voice = join(s.outDir, `pictalk-${job!.id}.ogg`);
    expect(s.text()).toContain('A drawing of a blue square.');
    expect(s.text()).toContain(`voice: ${voice} (1.5 s)`);
    expect(readFileSync(voice).toString()).toBe('ogg:A drawing of a blue square.');
  });

  it('shows bot errors with their code and local errors plainly', async () => {
    const s = session();
    writeFileSync(join(dir, 'x.pdf'), '%PDF');
    s.input.end(['/imagine cat --steps 80', '/caption /no/such/file.png', 'hello', '/caption ' + join(dir, 'x.pdf')].join('\n') + '\n');
    await s.done;
    expect(s.text()).toContain('error (input.invalid): Expected `steps` to be an integer from 1 to 50, got `80` (number).');
    expect(s.text()).toContain('error: cannot read /no/such/file.png');
    expect(s.text()).toContain('error: Commands start with a slash; try /help');
    expect(s.text()).toContain('error (input.unsupported): `x.pdf` is not an image (application/pdf)');
  });

  it('is a moderator of space local', async () => {
    const s = session();
    s.input.end('/quota set imagine 3\n/quota show\n');
    await s.done;
    expect(s.text()).toContain('Daily imagine limit for the space default is now 3 (not set before).');
    expect((await s.t.store.listAudit('local'))[0]).toMatchObject({ actorId: 'local', action: 'quota.set' });
  });

  it('cancels a running job while it waits', async () => {
    const t = makeBot();
    t.core.manual = true;
    const s = session(t);
    s.input.write('/imagine slow cat\n');
    const [job] = await t.core.waitForJobs(1);
    s.input.end(`/cancel ${job!.id}\n/status\n`);
    await s.done;
    expect(s.text()).toContain(`Cancelling job ${job!.id}; its quota will be refunded.`);
    expect(s.text()).toContain('error (job.cancelled): Cancelled. Your quota was refunded.');
  });

  it('writes the live preview beside the images while the job runs, and removes it with the reply', async () => {
    const t = makeBot();
    t.core.manual = ['imagine'];            // the alt text's caption job runs on its own
    const s = session(t);
    s.input.write('/imagine slow cat --seed 3\n');
    const [job] = await t.core.waitForJobs(1);
    job!.emit('start');
    const preview = Buffer.from('png:preview at step 2');
    job!.emit('progress', { stage: 'denoise', step: 2, total: 4, preview: { png: preview, width: 128, height: 128 } });
    const path = join(s.outDir, `preview-${job!.id}.png`);
    await waitFor(() => s.text().includes(`denoise 2/4 · preview ${path}`));
    await waitFor(() => existsSync(path) && readFileSync(path).equals(preview));   // written in the background
    // a later step without a new preview still points at the same file
    job!.emit('progress', { stage: 'denoise', step: 3, total: 4 });
    await waitFor(() => s.text().includes(`denoise 3/4 · preview ${path}`));
    s.input.end();
    await t.core.run(job!);
    await s.done;
    expect(existsSync(path)).toBe(false);
    expect(s.text()).toContain(`image: ${join(s.outDir, `pictalk-${job!.id}-1.png`)}`);
  });

  it('deletes the files of a job', async () => {
    const s = session();
    s.input.write('/imagine cat --seed 1\n');
    await waitFor(() => s.text().includes('image: '));
    const [job] = s.t.core.of('imagine');
    const file = join(s.outDir, `pictalk-${job!.id}-1.png`);
    expect(existsSync(file)).toBe(true);
    s.input.end(`/delete ${job!.id}\n`);
    await s.done;
    expect(existsSync(file)).toBe(false);
    expect(s.text()).toContain(`deleted: ${file}`);
  });

  it('stops reading at /quit', async () => {
    const s = session();
    s.input.write('/help\n/quit\n');
    await s.done;
    expect(s.text()).toContain('/imagine <prompt>');
  });
});
