import { checkPrompt, matchesBlocklist, parseBlockPattern } from '../../../bot/policy/content.policy.js';
import { makeBot, moderator } from '../helpers.js';

describe('blocklist patterns', () => {
  it('matches words and phrases as whole words in any case', () => {
    expect(matchesBlocklist('A BadWord here', ['badword'])).toBe(true);
    expect(matchesBlocklist('notbadwordy', ['badword'])).toBe(false);
    expect(matchesBlocklist('very  red   cat', ['red cat'])).toBe(true);
    expect(matchesBlocklist('ｂａｄｗｏｒｄ', ['badword'])).toBe(true); // full-width letters fold under NFKC
  });

  it('matches /regex/ patterns, always case-insensitively', () => {
    expect(matchesBlocklist('a Gr3y cat', ['/gr[e3]y/'])).toBe(true);
    expect(parseBlockPattern('/gr[e3]y/').regex.flags).toContain('i');
  });

  it('normalises words so add and remove agree', () => {
    expect(parseBlockPattern('  Bad   Word ').source).toBe('bad word');
  });

  it.each([
    ['', /Expected a blocklist pattern/],
    ['/a(/', /valid regular expression/],
    ['/(a+)+$/', /nested quantifiers/],
    ['/x/g', /flags from `imsu`/],
    ['/a*/', /does not match empty text/],
    ['semi;colon', /word or phrase/],
    ['x'.repeat(201), /at most 200 characters/],
  ])('rejects %j with a message that says what was expected', (pattern, message) => {
    expect(() => parseBlockPattern(pattern)).toThrow(message);
  });
});

describe('prompt rules', () => {
  it('rejects an empty or whitespace prompt as input.invalid', () => {
    expect(() => checkPrompt('prompt', '   \n', 100, [])).toThrow(expect.objectContaining({ code: 'input.invalid' }));
  });

  it('rejects a prompt over the limit as input.too_large, counting characters not bytes', () => {
    expect(checkPrompt('prompt', 'é'.repeat(10), 10, [])).toBe('é'.repeat(10));
    expect(() => checkPrompt('prompt', 'x'.repeat(11), 10, [])).toThrow(expect.objectContaining({ code: 'input.too_large' }));
  });
});

describe('blocklist in the bot', () => {
  it('blocks a prompt without repeating the word, and charges nothing', async () => {
    const t = makeBot();
    await t.send({ name: 'blocklist.add', pattern: 'Forbidden' }, moderator());
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a forbidden red circle' } })).reply;
    expect(reply.error).toEqual({ code: 'content.blocked', retryable: false });
    expect(reply.ephemeral).toBe(true);
    expect(reply.text.toLowerCase()).not.toContain('forbidden');
    expect(t.core.jobs).toHaveLength(0);
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01'))).toEqual({ reserved: 0, charged: 0, refunded: 0 });
  });

  it('checks the negative prompt too, and only in the space that blocked it', async () => {
    const t = makeBot();
    await t.send({ name: 'blocklist.add', pattern: '/sec+ret/' }, moderator());
    expect((await t.send({ name: 'imagine', options: { prompt: 'cat', negative: 'seccret' } })).reply.error?.code).toBe('content.blocked');
    const elsewhere = await t.send({ name: 'imagine', options: { prompt: 'secret cat' } }, { ...moderator('x'), spaceId: 'space2' });
    expect(elsewhere.reply.images).toHaveLength(1);
  });

  it('lets a removed pattern through again', async () => {
    const t = makeBot();
    const mod = moderator();
    await t.send({ name: 'blocklist.add', pattern: 'dog' }, mod);
    expect((await t.send({ name: 'blocklist.remove', pattern: 'DOG' }, mod)).reply.text).toBe('Removed `dog` from the blocklist.');
    expect((await t.send({ name: 'imagine', options: { prompt: 'a dog' } })).reply.images).toHaveLength(1);
  });
});
