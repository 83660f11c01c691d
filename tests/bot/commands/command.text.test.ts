import { IMAGINE_FLAGS, IMAGINE_USAGE, parseImagineText, tokenizeCommand } from '../../../bot/commands/command.text.js';
import { validateImagineOptions } from '../../../bot/commands/imagine.options.js';
import { IMAGINE_OPTIONS } from '../../../bot/commands/option.spec.js';
import { parseImagine as parseSlackImagine } from '../../../adapters/slack/command.parse.js';
import { parseLine } from '../../../adapters/local/local.parser.js';

// The one grammar of typed commands, tested once here; Slack and the terminal only wrap it.
describe('the shared /imagine text grammar', () => {
  test('flags anywhere, as `--flag value` or `--flag=value`; the other words, in order, make the prompt', () => {
    expect(parseImagineText('a red --seed 7 fox --guidance=6.5 --count 2 --scheduler DDIM --steps=12')).toEqual({
      prompt: 'a red fox', seed: 7, guidance: 6.5, count: 2, scheduler: 'ddim', steps: 12,
    });
  });

  test('"double", “curly” and \'single\' quotes keep a value whole; a quoted flag is a word; an apostrophe is not a quote', () => {
    expect(parseImagineText('cats --negative “blurry, dark”')).toEqual({ prompt: 'cats', negative: 'blurry, dark' });
    expect(parseImagineText('cats --negative \'blurry, dark\' --seed=3')).toEqual({ prompt: 'cats', negative: 'blurry, dark', seed: 3 });
    expect(parseImagineText('"--seed" as words')).toEqual({ prompt: '--seed as words' });
    expect(parseImagineText("the cat's toy --negative \"say \\\"no\\\"\"")).toEqual({ prompt: "the cat's toy", negative: 'say "no"' });
    expect(tokenizeCommand('a "b c" d')).toEqual([{ text: 'a', quoted: false }, { text: 'b c', quoted: true }, { text: 'd', quoted: false }]);
  });

  test('an em dash typed for `--` is a flag', () => {
    expect(parseImagineText('a fox —seed 3')).toEqual({ prompt: 'a fox', seed: 3 });
  });

  test.each([
    ['a fox --sed 7', /Unknown option `--sed`; \/imagine knows --negative, --seed, --steps, --guidance, --count, --scheduler/],
    ['a fox --seed', /`--seed` needs a value/],
    ['a fox --seed --steps 3', /`--seed` needs a value/],
    ['a fox --seed seven', /Expected `seed` to be an integer from 0 to 4294967295, got `"seven"` \(string\)/],
    ['a fox --seed=7.5', /Expected `seed` to be an integer/],
    ['a fox --guidance lots', /Expected `guidance` to be a number from 0 to 20/],
    ['a fox --scheduler magic', /Expected `scheduler` to be one of `pndm`, `ddim`/],
    ['a fox --seed 1 --seed=2', /given twice/],
    ['--seed 1', /Expected a prompt to draw, got none/],
  ])('%s is refused with a clear message and the usage', (text, message) => {
    expect(() => parseImagineText(text)).toThrow(expect.objectContaining({ code: 'input.invalid', message: expect.stringMatching(message) }));
    expect(() => parseImagineText(text)).toThrow(expect.objectContaining({ message: expect.stringContaining(IMAGINE_USAGE) }));
  });

  test('ranges are the specs\', checked once by bot/: an out-of-range value parses and validation refuses it', () => {
    const parsed = parseImagineText('x --steps 500');
    expect(parsed.steps).toBe(500);
    expect(() => validateImagineOptions(parsed, 500, [])).toThrow(/Expected `steps` to be an integer from 1 to 50, got `500` \(number\)/);
  });

  test('the flags are exactly the specs\' options besides the prompt, and the usage names each', () => {
    expect(IMAGINE_FLAGS.map((spec) => spec.name)).toEqual(IMAGINE_OPTIONS.map((spec) => spec.name).filter((name) => name !== 'prompt'));
    for (const spec of IMAGINE_FLAGS) expect(IMAGINE_USAGE).toContain(`--${spec.name}`);
  });

  test.each([
    'a red fox --seed=7 --steps 12',
    'a red fox --seed 7 --negative "blurry, dark" --guidance=6.5',
    'a fox —count 2 --scheduler euler-a',
  ])('Slack and the terminal read %j the same way', (text) => {
    const shared = parseImagineText(text);
    expect(parseSlackImagine(text)).toEqual(shared);
    expect(parseLine(`/imagine ${text}`)).toEqual({ kind: 'command', command: { name: 'imagine', options: shared } });
  });

  test('Slack undoes its HTML escapes first; the terminal reports refusals as its error lines', () => {
    expect(parseSlackImagine('cats &amp; dogs --steps 20')).toEqual({ prompt: 'cats & dogs', steps: 20 });
    expect(parseLine('/imagine cat --size 3')).toEqual({ kind: 'error', message: expect.stringMatching(/^Unknown option `--size`/) });
    expect(() => parseSlackImagine('cat --size 3')).toThrow(/^Unknown option `--size`/);
  });
});
