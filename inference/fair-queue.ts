/**
 * A fair waiting line: round-robin over spaces, then round-robin over users within a space, FIFO within a user.
 *
 * Serving a user moves that user to the back of the space's line, and serving a space moves the space to the back
 * of the line of spaces; a user or space that runs out of items leaves the line and re-joins at the back. So one
 * user with twenty items delays another user's single item by at most one item, and one busy space (a large guild)
 * delays another space by at most one item per round, however many users it has.
 */

export interface FairKey {
  spaceId: string;
  userId: string;
}

export class FairQueue<T> {
  // Maps keep insertion order: the first entry is the front of each line.
  private readonly spaces = new Map<string, Map<string, T[]>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(key: FairKey, item: T): void {
    let users = this.spaces.get(key.spaceId);
    if (!users) { users = new Map(); this.spaces.set(key.spaceId, users); }
    let items = users.get(key.userId);
    if (!items) { items = []; users.set(key.userId, items); }
    items.push(item);
    this.count++;
  }

  /** Take the next item in fair order, or undefined when empty. */
  shift(): T | undefined {
    const first = this.spaces.entries().next();
    if (first.done) return undefined;
    const [spaceId, users] = first.value;
    const [userId, items] = users.entries().next().value as [string, T[]];
    const item = items.shift()!;
    this.count--;
    // Rotate: the served user goes to the back of its space, the served space to the back of all spaces.
    users.delete(userId);
    if (items.length > 0) users.set(userId, items);
    this.spaces.delete(spaceId);
    if (users.size > 0) this.spaces.set(spaceId, users);
    return item;
  }

  /** Remove one item (a cancelled job). Returns whether it was there. */
  remove(key: FairKey, item: T): boolean {
    const users = this.spaces.get(key.spaceId);
    const items = users?.get(key.userId);
    const index = items?.indexOf(item) ?? -1;
    if (!users || !items || index < 0) return false;
    items.splice(index, 1);
    this.count--;
    if (items.length === 0) users.delete(key.userId);
    if (users.size === 0) this.spaces.delete(key.spaceId);
    return true;
  }

  /** Every item in the order `shift` would return them (for queue positions); O(n). */
  order(): T[] {
    // Simulate the rotation on shallow copies.
    const spaces = new Map([...this.spaces].map(([s, users]) => [s, new Map([...users].map(([u, items]) => [u, [...items]]))]));
    const out: T[] = [];
    for (;;) {
      const first = spaces.entries().next();
      if (first.done) return out;
      const [spaceId, users] = first.value;
      const [userId, items] = users.entries().next().value as [string, T[]];
      out.push(items.shift()!);
      users.delete(userId);
      if (items.length > 0) users.set(userId, items);
      spaces.delete(spaceId);
      if (users.size > 0) spaces.set(spaceId, users);
    }
  }

  /** Remove and return everything (for shutdown). */
  drain(): T[] {
    const all = this.order();
    this.spaces.clear();
    this.count = 0;
    return all;
  }
}
