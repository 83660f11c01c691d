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
import { SCHEDULER_NAMES } from '../../inference/types.js';

/** The name of the MESSAGE context-menu command (context-menu names may hold spaces and capitals). */
export const CAPTION_MESSAGE_COMMAND = 'Caption image';

/** Commands that only moderators see by default; bot/ checks again at run time (roles configured per space). */
export const MODERATOR_COMMANDS: ReadonlySet<string> = new Set(['quota', 'blocklist']);

// Quotas and blocklists are per server, so every command lives in servers only.
const inGuilds = (): { contexts: InteractionContextType[]; integration_types: ApplicationIntegrationType[] } => ({
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
});

// The permission bitfield goes over the wire as a decimal string.
const MANAGE_GUILD = PermissionFlagsBits.ManageGuild.toString();

const kindChoices: APIApplicationCommandOptionChoice<string>[] = [
  { name: 'imagine', value: 'imagine' },
  { name: 'caption', value: 'caption' },
];

const kindAndLimit: APIApplicationCommandBasicOption[] = [
  { type: ApplicationCommandOptionType.String, name: 'kind', description: 'Which command the quota counts', required: true, choices: kindChoices },
  { type: ApplicationCommandOptionType.Integer, name: 'limit', description: 'Uses per day', required: true, min_value: 0, max_value: 10_000 },
];

export const COMMANDS: RESTPutAPIApplicationCommandsJSONBody = [
  {
    type: ApplicationCommandType.ChatInput,
    name: 'imagine',
    description: 'Draw an image from a text prompt',
    ...inGuilds(),
    options: [
      { type: ApplicationCommandOptionType.String, name: 'prompt', description: 'What to draw', required: true, max_length: 1000 },
      { type: ApplicationCommandOptionType.String, name: 'negative', description: 'What to keep out of the image', max_length: 1000 },
      // Seeds are 0 .. 2^32-1 (inference/types.ts); Discord integers reach 2^53, so the range fits.
      { type: ApplicationCommandOptionType.Integer, name: 'seed', description: 'Seed for a reproducible image', min_value: 0, max_value: 4_294_967_295 },
      { type: ApplicationCommandOptionType.Integer, name: 'steps', description: 'Denoising steps', min_value: 1, max_value: 100 },
      { type: ApplicationCommandOptionType.Number, name: 'guidance', description: 'Classifier-free guidance scale (1 or less: off)', min_value: 0, max_value: 30 },
      { type: ApplicationCommandOptionType.Integer, name: 'count', description: 'How many images', min_value: 1, max_value: 4 },
      {
        type: ApplicationCommandOptionType.String, name: 'scheduler', description: 'Noise scheduler',
        choices: SCHEDULER_NAMES.map((name) => ({ name, value: name })),
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
  {
    type: ApplicationCommandType.ChatInput,
    name: 'pictalk',
    description: 'Queue status and your own usage',
    ...inGuilds(),
  },
];

/**
 * Replace every command with `COMMANDS` in one request (bulk overwrite): globally, or in one guild, where changes show at
 * once (global ones can take a while to reach clients), which suits development servers.
 */
export async function registerCommands(
  rest: REST,
  applicationId: string,
  guildId?: string,
): Promise<RESTPutAPIApplicationCommandsResult> {
  const route = guildId ? Routes.applicationGuildCommands(applicationId, guildId) : Routes.applicationCommands(applicationId);
  return (await rest.put(route, { body: COMMANDS })) as RESTPutAPIApplicationCommandsResult;
}
