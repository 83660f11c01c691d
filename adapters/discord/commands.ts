/**
 * pictalk's application commands as raw JSON bodies, and their registration by bulk overwrite.
 * @see https://discord.com/developers/docs/interactions/application-commands#bulk-overwrite-global-application-commands
 */
import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ApplicationIntegrationType,
  InteractionContextType,
  PermissionFlagsBits,
  Routes,
  type APIApplicationCommandBasicOption,
  type APIApplicationCommandOptionChoice,
  type REST,
  type RESTPutAPIApplicationCommandsJSONBody,
  type RESTPutAPIApplicationCommandsResult,
} from 'discord.js';
import { IMAGINE_OPTIONS, QUOTA_KIND_OPTION, QUOTA_LIMIT_OPTION, imagineOption, type OptionSpec } from '../../bot/commands/option.spec.js';
import { DEFAULT_BOT_CONFIG } from '../../bot/config.js';
import { SAFETY_MODES } from '../../bot/types.js';
import { LIMIT_KEYS, SETTING_DESCRIPTIONS, SETTING_KEYS, type ServerSettingKey } from '../../bot/user.settings.js';

/** The name of the MESSAGE context-menu command (context-menu names may hold spaces and capitals). */
export const CAPTION_MESSAGE_COMMAND = 'Caption image';

/** Commands that only moderators see by default; bot/ checks again at run time (roles configured per space). */
export const MODERATOR_COMMANDS: ReadonlySet<string> = new Set(['quota', 'blocklist', 'safety']);

// Quotas and blocklists are per server, so every command lives in servers only.
const inGuilds = (): { contexts: InteractionContextType[]; integration_types: ApplicationIntegrationType[] } => ({
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
});

// The permission bitfield goes over the wire as a decimal string.
const MANAGE_GUILD = PermissionFlagsBits.ManageGuild.toString();

/** Discord's longest string option. @see https://discord.com/developers/docs/interactions/application-commands#application-command-object-application-command-option-structure */
const MAX_STRING_OPTION = 6000;

/** The limits the command bodies carry that are operator settings rather than constants. */
export interface CommandLimits { maxPromptChars: number }

/**
 * One option of bot/'s spec as Discord's option JSON: its type, range, length and choices. Discord integers reach
 * 2^53, so every integer range of the spec fits.
 */
export function discordOption(spec: OptionSpec, limits: CommandLimits): APIApplicationCommandBasicOption {
  const base = { name: spec.name, description: spec.description, ...(spec.required ? { required: true } : {}) };
  switch (spec.type) {
    case 'string':
      return { ...base, type: ApplicationCommandOptionType.String, ...(spec.limit ? { max_length: Math.min(limits[spec.limit], MAX_STRING_OPTION) } : {}) };
    case 'integer':
      return { ...base, type: ApplicationCommandOptionType.Integer, min_value: spec.min, max_value: spec.max };
    case 'number':
      return { ...base, type: ApplicationCommandOptionType.Number, min_value: spec.min, max_value: spec.max };
    case 'choice': {
      const choices: APIApplicationCommandOptionChoice<string>[] = spec.choices.map((choice) => ({ name: choice, value: choice }));
      return { ...base, type: ApplicationCommandOptionType.String, choices };
    }
  }
}

/** The command bodies, derived from bot/'s option specs; `limits` from the bot's settings. */
export function buildCommands(limits: CommandLimits = { maxPromptChars: DEFAULT_BOT_CONFIG.maxPromptChars }): RESTPutAPIApplicationCommandsJSONBody {
  const kindAndLimit = [discordOption(QUOTA_KIND_OPTION, limits), discordOption(QUOTA_LIMIT_OPTION, limits)];
  return [
    {
      type: ApplicationCommandType.ChatInput,
      name: 'imagine',
      description: 'Draw an image from a text prompt',
      ...inGuilds(),
      options: [
        ...IMAGINE_OPTIONS.map((spec) => discordOption(spec, limits)),
        // image-to-image: a picture to start from, and how far from it to go (bot/ checks 0 < S <= 1 again)
        { type: ApplicationCommandOptionType.Attachment, name: 'image', description: 'A picture to start from (image-to-image)' },
        {
          type: ApplicationCommandOptionType.Number, name: 'strength', min_value: 0, max_value: 1,
          description: 'With an image: how far from it to go, above 0 up to 1 (default: your setting, else 0.6)',
        },
      ],
    },
    {
      type: ApplicationCommandType.ChatInput,
      name: 'caption',
      description: 'Describe an image in words, written and spoken',
      ...inGuilds(),
      options: [
        { type: ApplicationCommandOptionType.Attachment, name: 'image', description: 'The image to describe', required: true },
        { type: ApplicationCommandOptionType.Boolean, name: 'voice', description: 'Also send the caption as a voice message (default: yes)' },
      ],
    },
    // Context-menu commands carry no description (the API rejects a non-empty one).
    { type: ApplicationCommandType.Message, name: CAPTION_MESSAGE_COMMAND, ...inGuilds() },
    {
      type: ApplicationCommandType.ChatInput,
      name: 'quota',
      description: 'See and set daily quotas',
      default_member_permissions: MANAGE_GUILD,
      ...inGuilds(),
      options: [
        {
          type: ApplicationCommandOptionType.SubcommandGroup, name: 'set', description: 'Set a daily quota',
          options: [
            {
              type: ApplicationCommandOptionType.Subcommand, name: 'user', description: 'Set one member\'s quota',
              options: [{ type: ApplicationCommandOptionType.User, name: 'user', description: 'The member', required: true }, ...kindAndLimit],
            },
            {
              type: ApplicationCommandOptionType.Subcommand, name: 'role', description: 'Set the quota of everyone with a role',
              options: [{ type: ApplicationCommandOptionType.Role, name: 'role', description: 'The role', required: true }, ...kindAndLimit],
            },
            { type: ApplicationCommandOptionType.Subcommand, name: 'default', description: 'Set the server-wide default quota', options: [...kindAndLimit] },
          ],
        },
        {
          type: ApplicationCommandOptionType.Subcommand, name: 'show', description: 'Show quotas and usage',
          options: [{ type: ApplicationCommandOptionType.User, name: 'user', description: 'Only this member' }],
        },
        {
          type: ApplicationCommandOptionType.Subcommand, name: 'reset', description: 'Reset a member\'s usage for today',
          options: [{ type: ApplicationCommandOptionType.User, name: 'user', description: 'The member', required: true }],
        },
      ],
    },
    {
      type: ApplicationCommandType.ChatInput,
      name: 'blocklist',
      description: 'Words and patterns that prompts may not contain',
      default_member_permissions: MANAGE_GUILD,
      ...inGuilds(),
      options: [
        {
          type: ApplicationCommandOptionType.Subcommand, name: 'add', description: 'Block a word or pattern',
          options: [{ type: ApplicationCommandOptionType.String, name: 'pattern', description: 'Word or pattern', required: true, max_length: 200 }],
        },
        {
          type: ApplicationCommandOptionType.Subcommand, name: 'remove', description: 'Unblock a word or pattern',
          options: [{ type: ApplicationCommandOptionType.String, name: 'pattern', description: 'Word or pattern', required: true, max_length: 200 }],
        },
        { type: ApplicationCommandOptionType.Subcommand, name: 'list', description: 'List blocked words and patterns' },
      ],
    },
    settingsCommand(limits),
    {
      type: ApplicationCommandType.ChatInput,
      name: 'safety',
      description: 'What happens to images the safety checker flags',
      default_member_permissions: MANAGE_GUILD,
      ...inGuilds(),
      options: [
        { type: ApplicationCommandOptionType.Subcommand, name: 'show', description: 'Show the protection in force and each channel\'s mode' },
        {
          type: ApplicationCommandOptionType.Subcommand, name: 'set', description: 'Withhold flagged images, or send them as spoilers in age-restricted channels',
          options: [
            {
              type: ApplicationCommandOptionType.String, name: 'mode', description: 'withhold: never posted, quota refunded; spoiler: only in age-restricted channels',
              required: true, choices: SAFETY_MODES.map((mode) => ({ name: mode, value: mode })),
            },
            { type: ApplicationCommandOptionType.Channel, name: 'channel', description: 'Only this channel (default: the whole server)' },
          ],
        },
      ],
    },
    {
      type: ApplicationCommandType.ChatInput,
      name: 'pictalk',
      description: 'Queue status and your own usage',
      ...inGuilds(),
    },
  ];
}

/** One `/settings set` option per key, typed and ranged as `/imagine`'s own option (bot/ checks again). */
function settingOption(key: ServerSettingKey, limits: CommandLimits): APIApplicationCommandBasicOption {
  const description = SETTING_DESCRIPTIONS[key];
  switch (key) {
    case 'voice':
    case 'private':
      return { type: ApplicationCommandOptionType.Boolean, name: key, description };
    case 'strength':
      // 0 < S <= 1: Discord's range is closed, so bot/ refuses the 0 it lets through
      return { type: ApplicationCommandOptionType.Number, name: key, description, min_value: 0, max_value: 1 };
    case 'max_steps':
      return { ...discordOption(imagineOption('steps'), limits), name: key, description };
    case 'max_count':
      return { ...discordOption(imagineOption('count'), limits), name: key, description };
    default:
      return { ...discordOption(imagineOption(key), limits), name: key, description };
  }
}

/** `/settings show|set|reset` for oneself, and the `server` group (moderators, checked by bot/) for the server. */
function settingsCommand(limits: CommandLimits): RESTPutAPIApplicationCommandsJSONBody[number] {
  const keyChoice = (keys: readonly string[]) => ({
    type: ApplicationCommandOptionType.String as const, name: 'key', description: 'Only this setting (default: all)',
    choices: keys.map((key) => ({ name: key, value: key })),
  });
  const userKeys: readonly ServerSettingKey[] = SETTING_KEYS;
  const serverKeys: readonly ServerSettingKey[] = [...SETTING_KEYS, ...LIMIT_KEYS];
  const { Subcommand, SubcommandGroup } = ApplicationCommandOptionType;
  return {
    type: ApplicationCommandType.ChatInput,
    name: 'settings',
    description: 'Your defaults for /imagine and /caption; moderators: the server\'s',
    ...inGuilds(),
    options: [
      { type: Subcommand, name: 'show', description: 'Show your settings' },
      { type: Subcommand, name: 'set', description: 'Set one or more of your defaults', options: userKeys.map((key) => settingOption(key, limits)) },
      { type: Subcommand, name: 'reset', description: 'Clear your defaults', options: [keyChoice(userKeys)] },
      {
        type: SubcommandGroup, name: 'server', description: 'Server defaults and limits (moderators)',
        options: [
          { type: Subcommand, name: 'show', description: 'Show the server defaults and limits' },
          { type: Subcommand, name: 'set', description: 'Set server defaults and limits', options: serverKeys.map((key) => settingOption(key, limits)) },
          { type: Subcommand, name: 'reset', description: 'Clear server defaults and limits', options: [keyChoice(serverKeys)] },
        ],
      },
    ],
  };
}

/** The bodies with the default settings. */
export const COMMANDS: RESTPutAPIApplicationCommandsJSONBody = buildCommands();

/**
 * Replace every command with `COMMANDS` in one request (bulk overwrite): globally, or in one guild, where changes show at
 * once (global ones can take a while to reach clients), which suits development servers.
 */
export async function registerCommands(
  rest: REST,
  applicationId: string,
  guildId?: string,
  limits?: CommandLimits,
): Promise<RESTPutAPIApplicationCommandsResult> {
  const route = guildId ? Routes.applicationGuildCommands(applicationId, guildId) : Routes.applicationCommands(applicationId);
  return (await rest.put(route, { body: buildCommands(limits) })) as RESTPutAPIApplicationCommandsResult;
}
