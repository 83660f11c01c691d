import { StatusThrottle } from '../../adapters/status-throttle.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('StatusThrottle', () => {
  test('sends the first state at once, then at most one per interval, always the latest', async () => {
    const sent: Array<{ value: number; at: number }> = [];
    const start = Date.now();
    const throttle = new StatusThrottle<number>(async (value) => { sent.push({ value, at: Date.now() - start }); }, 200);
    for (let i = 1; i <= 10; i++) {
      throttle.push(i);
      await sleep(45);
    }
    await sleep(300);
    expect(sent[0]!.value).toBe(1);
    expect(sent.at(-1)!.value).toBe(10);
    expect(sent.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < sent.length; i++) expect(sent[i]!.at - sent[i - 1]!.at).toBeGreaterThanOrEqual(190);
  });

  test('one edit in flight at a time: a slow send delays the next rather than overlapping it', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const throttle = new StatusThrottle<number>(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(120);
      inFlight--;
    }, 10);
    for (let i = 0; i < 6; i++) {
      throttle.push(i);
      await sleep(30);
    }
    await sleep(400);
    expect(maxInFlight).toBe(1);
  });

  test('close() drops pending states and waits for the edit on the wire', async () => {
    const sent: number[] = [];
    let finishedSending = false;
    const throttle = new StatusThrottle<number>(async (value) => {
      sent.push(value);
      await sleep(100);
      finishedSending = true;
    }, 1000);
    throttle.push(1);
    throttle.push(2);
    await throttle.close();
    expect(finishedSending).toBe(true);
    throttle.push(3);
    await sleep(50);
    expect(sent).toEqual([1]);
  });

  test('a failed send is reported and does not stop later ones', async () => {
    const errors: unknown[] = [];
    const sent: number[] = [];
    const throttle = new StatusThrottle<number>(async (value) => {
      if (value === 1) throw new Error('429');
      sent.push(value);
    }, 20, (error) => errors.push(error));
    throttle.push(1);
    await sleep(5);
    throttle.push(2);
    await sleep(80);
    expect(errors).toHaveLength(1);
    expect(sent).toEqual([2]);
  });

  test('rejects a negative interval', () => {
    expect(() => new StatusThrottle(async () => {}, -1)).toThrow(/Expected `intervalMs` to be a finite number >= 0, got `-1`/);
  });
});
