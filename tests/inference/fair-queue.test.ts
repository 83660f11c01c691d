import { FairQueue } from '../../inference/fair-queue.js';

const key = (spaceId: string, userId: string) => ({ spaceId, userId });

describe('FairQueue', () => {
  it('is FIFO for one user', () => {
    const q = new FairQueue<string>();
    ['a1', 'a2', 'a3'].forEach((x) => q.push(key('s', 'a'), x));
    expect(q.order()).toEqual(['a1', 'a2', 'a3']);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual(['a1', 'a2', 'a3', undefined]);
    expect(q.size).toBe(0);
  });

  it('lets a user with one item pass a user with twenty after at most one of theirs', () => {
    const q = new FairQueue<string>();
    for (let i = 1; i <= 20; i++) q.push(key('s', 'a'), `a${i}`);
    q.push(key('s', 'b'), 'b1');
    expect(q.order().indexOf('b1')).toBeLessThanOrEqual(1);
    // and the same after some of a's have been served
    q.shift();
    q.shift();
    q.push(key('s', 'c'), 'c1');
    expect(q.order().slice(0, 3)).toContain('c1');
  });

  it('takes turns between spaces first, so a space with many users does not crowd out one with a single user', () => {
    const q = new FairQueue<string>();
    for (const user of ['u1', 'u2', 'u3', 'u4']) for (let i = 1; i <= 2; i++) q.push(key('big', user), `${user}.${i}`);
    q.push(key('small', 'v'), 'v1');
    q.push(key('small', 'v'), 'v2');
    expect(q.order()).toEqual(['u1.1', 'v1', 'u2.1', 'v2', 'u3.1', 'u4.1', 'u1.2', 'u2.2', 'u3.2', 'u4.2']);
  });

  it('order() predicts shift() exactly, and remove() takes one item out', () => {
    const q = new FairQueue<number>();
    const keys = [key('s1', 'a'), key('s1', 'b'), key('s2', 'c'), key('s3', 'd')];
    let n = 0;
    for (let round = 0; round < 5; round++) for (const k of keys.slice(0, 1 + (round % 4))) q.push(k, n++);
    expect(q.remove(keys[0]!, 0)).toBe(true);
    expect(q.remove(keys[0]!, 0)).toBe(false);
    expect(q.remove(keys[3]!, 1)).toBe(false);          // not that owner's item
    const predicted = q.order();
    const actual: number[] = [];
    for (let x = q.shift(); x !== undefined; x = q.shift()) actual.push(x);
    expect(actual).toEqual(predicted);
    expect(actual).toHaveLength(n - 1);
  });

  it('drain() empties it in fair order', () => {
    const q = new FairQueue<string>();
    q.push(key('s', 'a'), 'a1');
    q.push(key('s', 'a'), 'a2');
    q.push(key('t', 'b'), 'b1');
    expect(q.drain()).toEqual(['a1', 'b1', 'a2']);
    expect(q.size).toBe(0);
    expect(q.shift()).toBeUndefined();
  });
});
