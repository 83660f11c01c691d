import { COMMANDS, CAPTION_MESSAGE_COMMAND, buildCommands } from '../../../adapters/discord/commands.js';
import { IMAGINE_OPTIONS, QUOTA_LIMIT_OPTION, imagineOption } from '../../../bot/commands/option.spec.js';
import { DEFAULT_BOT_CONFIG } from '../../../bot/config.js';
import { QUOTA_LIMIT_MAX } from '../../../bot/policy/quota.policy.js';
import { SCHEDULER_NAMES } from '../../../inference/types.js';

type Option = { type: number; name: string; description: string; required?: boolean; options?: Option[]; choices?: Array<{ name: string; value: unknown }> };
type Command = { type?: number; name: string; description?: string; options?: Option[]; default_member_permissions?: string | null; contexts?: number[] };
const commands = COMMANDS as unknown as Command[];
const byName = (name: string) => commands.find((c) => c.name === name)!;

/** The API's rules for command bodies, so a typo fails here rather than at registration. */
function checkOptions(options: Option[] | undefined, path: string): void {
  let seenOptional = false;
  for (const option of options ?? []) {
    const where = `${path} ${option.name}`;
    expect([where, /^[-_\p{Ll}\p{N}]{1,32}$/u.test(option.name)]).toEqual([where, true]);
    expect([where, option.description.length >= 1 && option.description.length <= 100]).toEqual([where, true]);
    if (option.type <= 2) {
      checkOptions(option.options, where);
      continue;
    }
    // Required options come before optional ones.
    if (!option.required) seenOptional = true;
    else expect([where, seenOptional]).toEqual([where, false]);
    expect((option.choices ?? []).length).toBeLessThanOrEqual(25);
  }
  expect((options ?? []).length).toBeLessThanOrEqual(25);
}

test('every body follows the API rules for names, descriptions and option order', () => {
  expect(new Set(commands.map((c) => c.name)).size).toBe(commands.length);
  for (const command of commands) {
    if ((command.type ?? 1) === 1) {
      expect(command.name).toMatch(/^[-_\p{Ll}\p{N}]{1,32}$/u);
      expect(command.description!.length).toBeGreaterThan(0);
      expect(command.description!.length).toBeLessThanOrEqual(100);
      checkOptions(command.options, command.name);
    } else {
      expect(command.description ?? '').toBe('');
      expect(command.options).toBeUndefined();
    }
    expect(command.contexts).toEqual([0]);
  }
});

test('/imagine offers exactly the options, ranges and schedulers of bot/\'s spec, the prompt length from the settings', () => {
  const options = byName('imagine').options! as Array<Option & { min_value?: number; max_value?: number; max_length?: number }>;
  // bot/'s spec, then image-to-image's picture (an attachment, type 11) and strength (a number, type 10)
  expect(options.map((o) => o.name)).toEqual([...IMAGINE_OPTIONS.map((spec) => spec.name), 'image', 'strength']);
  expect(options.find((o) => o.name === 'image')).toMatchObject({ type: 11 });
  expect(options.find((o) => o.name === 'image')!.required).toBeUndefined();
  expect(options.find((o) => o.name === 'strength')).toMatchObject({ type: 10, min_value: 0, max_value: 1 });
  expect(options.find((o) => o.name === 'scheduler')!.choices!.map((c) => c.value)).toEqual([...SCHEDULER_NAMES]);
  expect(options.find((o) => o.name === 'prompt')).toMatchObject({ type: 3, required: true, max_length: DEFAULT_BOT_CONFIG.maxPromptChars });
  for (const name of ['steps', 'count', 'guidance', 'seed'] as const) {
    const spec = imagineOption(name);
    expect(options.find((o) => o.name === name)).toMatchObject({ type: spec.type === 'integer' ? 4 : 10, min_value: spec.min, max_value: spec.max });
  }
  expect(imagineOption('steps')).toMatchObject({ min: 1, max: 50 });
  expect(imagineOption('guidance')).toMatchObject({ min: 0, max: 20 });
  const long = buildCommands({ maxPromptChars: 9000 }).find((c) => c.name === 'imagine') as unknown as Command;
  expect((long.options! as Array<{ name: string; max_length?: number }>).find((o) => o.name === 'prompt')!.max_length).toBe(6000); // Discord's ceiling
});

test('/quota limits are the policy\'s', () => {
  const set = byName('quota').options!.find((o) => o.name === 'set')!;
  for (const sub of set.options!) {
    expect(sub.options!.find((o) => o.name === 'limit')).toMatchObject({ type: 4, min_value: 0, max_value: QUOTA_LIMIT_OPTION.max });
  }
  expect(QUOTA_LIMIT_OPTION.max).toBe(QUOTA_LIMIT_MAX);
});

test('moderator commands default to Manage Server; the others are open', () => {
  expect(byName('quota').default_member_permissions).toBe('32');
  expect(byName('blocklist').default_member_permissions).toBe('32');
  for (const name of ['imagine', 'caption', 'pictalk', CAPTION_MESSAGE_COMMAND]) expect(byName(name).default_member_permissions).toBeUndefined();
  expect(byName(CAPTION_MESSAGE_COMMAND).type).toBe(3);
  expect(byName('caption').options![0]).toMatchObject({ type: 11, name: 'image', required: true });
});

test('/quota set has user, role and default targets; show and reset take a user', () => {
  const quota = byName('quota').options!;
  const set = quota.find((o) => o.name === 'set')!;
  expect(set.type).toBe(2);
  expect(set.options!.map((o) => o.name)).toEqual(['user', 'role', 'default']);
  for (const sub of set.options!) expect(sub.options!.slice(-2).map((o) => o.name)).toEqual(['kind', 'limit']);
  expect(quota.find((o) => o.name === 'reset')!.options![0]).toMatchObject({ type: 6, required: true });
});
