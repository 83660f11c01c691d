import { parseLine, tokenize } from '../../../adapters/local/local.parser.js';

describe('local command parser', () => {
  it('keeps quoted parts together', () => {
    expect(tokenize(`a "b c" 'd e' f\\"`)).toEqual(['a', 'b c', 'd e', 'f\\"']);
  });

  it('parses /imagine with options anywhere and numbers as numbers', () => {
    expect(parseLine('/imagine a red --seed 42 circle --guidance 7.5 --negative "blurry, dark" --scheduler ddim')).toEqual({
      kind: 'command',
      command: { name: 'imagine', options: { prompt: 'a red circle', seed: 42, guidance: 7.5, negative: 'blurry, dark', scheduler: 'ddim' } },
    });
  });

  it('reports refusals of the shared grammar as error lines', () => {
    expect(parseLine('/imagine cat --steps many')).toEqual({ kind: 'error', message: expect.stringMatching(/^Expected `steps` to be an integer from 1 to 50, got `"many"`/) });
    expect(parseLine('/imagine cat --size 3')).toEqual({ kind: 'error', message: expect.stringMatching(/^Unknown option `--size`; \/imagine knows --negative, --seed/) });
    expect(parseLine('/imagine cat --seed')).toEqual({ kind: 'error', message: expect.stringMatching(/^The option `--seed` needs a value/) });
    expect(parseLine('/imagine cat --seed=7')).toEqual({ kind: 'command', command: { name: 'imagine', options: { prompt: 'cat', seed: 7 } } });
  });

  it.each([
    ['/status', { name: 'status' }],
    ['/cancel j1', { name: 'cancel', jobId: 'j1' }],
    ['/quota set imagine 5 role:123', { name: 'quota.set', target: { kind: 'role', id: '123' }, kind: 'imagine', limit: 5 }],
    ['/quota set caption 2', { name: 'quota.set', target: { kind: 'default' }, kind: 'caption', limit: 2 }],
    ['/quota show user:u1', { name: 'quota.show', target: { kind: 'user', id: 'u1' } }],
    ['/quota reset u1', { name: 'quota.reset', target: { kind: 'user', id: 'u1' } }],
    ['/blocklist add /bad (word|thing)/i', { name: 'blocklist.add', pattern: '/bad (word|thing)/i' }],
    ['/autocaption C1 on', { name: 'autocaption.set', channelId: 'C1', enabled: true }],
  ])('parses %s', (line, command) => {
    expect(parseLine(line)).toEqual({ kind: 'command', command });
  });

  it('parses /caption with a path and --no-voice', () => {
    expect(parseLine('/caption "my photo.png" --no-voice')).toEqual({ kind: 'caption', path: 'my photo.png', voice: false });
    // no flag: the user's `voice` setting decides
    expect(parseLine('/caption cat.png')).toEqual({ kind: 'caption', path: 'cat.png' });
    expect(parseLine('/caption cat.png --voice')).toEqual({ kind: 'caption', path: 'cat.png', voice: true });
  });

  it.each([
    ['/settings', { name: 'settings.show', scope: 'user' }],
    ['/settings show', { name: 'settings.show', scope: 'user' }],
    ['/settings set steps 30', { name: 'settings.set', scope: 'user', values: { steps: '30' } }],
    ['/settings set negative blurry, dark', { name: 'settings.set', scope: 'user', values: { negative: 'blurry, dark' } }],
    ['/settings reset', { name: 'settings.reset', scope: 'user' }],
    ['/settings reset private', { name: 'settings.reset', scope: 'user', key: 'private' }],
    ['/settings server show', { name: 'settings.show', scope: 'server' }],
    ['/settings server set max_steps 30', { name: 'settings.set', scope: 'server', values: { max_steps: '30' } }],
    ['/settings server reset max_count', { name: 'settings.reset', scope: 'server', key: 'max_count' }],
  ])('parses %s', (line, command) => {
    expect(parseLine(line)).toEqual({ kind: 'command', command });
  });

  it('refuses a malformed /settings line with the usage', () => {
    expect(parseLine('/settings set steps')).toEqual({ kind: 'error', message: expect.stringMatching(/^Expected `set` with a key and a value, got `"steps"` \(string\)\. Usage: `\/settings show`/) });
    expect(parseLine('/settings wipe')).toEqual({ kind: 'error', message: expect.stringMatching(/^Expected show, set, reset or server, got `"wipe"`/) });
    expect(parseLine('/settings reset steps count').kind).toBe('error');
  });

  it('refuses lines without a slash and unknown commands', () => {
    expect(parseLine('hello')).toEqual({ kind: 'error', message: 'Commands start with a slash; try /help' });
    expect(parseLine('/paint x').kind).toBe('error');
    expect(parseLine('  ')).toEqual({ kind: 'empty' });
  });
});
