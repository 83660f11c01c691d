/** `/safety` as Slack (`/pictalk safety ...`) and the terminal (`/safety ...`) type it. */
import { parseLine } from '../../adapters/local/local.parser.js';
import { parseChannelMention, parsePictalk } from '../../adapters/slack/command.parse.js';

describe('Slack: /pictalk safety', () => {
  it('shows the protection, and sets withhold for the workspace or one channel', () => {
    expect(parsePictalk('safety')).toEqual({ name: 'safety.show' });
    expect(parsePictalk('safety show')).toEqual({ name: 'safety.show' });
    expect(parsePictalk('safety set withhold')).toEqual({ name: 'safety.set', mode: 'withhold' });
    expect(parsePictalk('safety set withhold &lt;#C024BE7LR|general&gt;')).toEqual({ name: 'safety.set', mode: 'withhold', channelId: 'C024BE7LR' });
    expect(parseChannelMention('C024BE7LR')).toBe('C024BE7LR');
  });

  it('refuses spoilers (Slack has none) and anything else with the usage', () => {
    expect(() => parsePictalk('safety set spoiler')).toThrow(expect.objectContaining({
      code: 'input.invalid', message: expect.stringMatching(/^Slack has no spoilers, so images the safety checker flags are always withheld here\. Usage:/),
    }));
    expect(() => parsePictalk('safety set blur')).toThrow(/^Expected `set withhold` and at most one channel, got `"blur"` \(string\)\. Usage:/);
    expect(() => parsePictalk('safety set withhold #general')).toThrow(/^Expected a channel mention like #general, got `"#general"` \(string\)/);
    expect(() => parsePictalk('safety drop')).toThrow(/^Expected `show` or `set`, got `"drop"` \(string\)/);
  });
});

describe('terminal: /safety', () => {
  it.each([
    ['/safety', { name: 'safety.show' }],
    ['/safety show', { name: 'safety.show' }],
    ['/safety set spoiler', { name: 'safety.set', mode: 'spoiler' }],
    ['/safety set withhold C7', { name: 'safety.set', mode: 'withhold', channelId: 'C7' }],
  ])('%s', (line, command) => {
    expect(parseLine(line)).toEqual({ kind: 'command', command });
  });

  it('answers a bad mode or extra words with the usage', () => {
    for (const line of ['/safety set blur', '/safety set', '/safety set withhold C7 extra', '/safety drop']) {
      expect(parseLine(line)).toEqual({ kind: 'error', message: 'Usage: /safety [show] | /safety set withhold|spoiler [channel]' });
    }
  });
});
