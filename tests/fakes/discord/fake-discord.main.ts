/**
 * Run the fake Discord on its own, for trying the adapter by hand:
 *   npx tsx tests/fakes/discord/fake-discord.main.ts [port]
 * It prints the settings to start pictalk against it (token, application id, API URL, guild id), then reads commands on
 * stdin and dispatches them as interactions from a plain member (`alice`) or a moderator (`mod ...`):
 *   imagine a red circle      caption <path to an image>      pictalk      mod quota show      disconnect      quit
 * Every REST call the client makes is printed as it arrives.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { FakeDiscord } from './fake-discord.js';
import { OptionType } from './fake-discord.payloads.js';

const fake = await FakeDiscord.start({ port: Number(process.argv[2] ?? 0) });
console.log(`fake Discord on ${fake.baseUrl}
  token           ${fake.token}
  application id  ${fake.applicationId}
  api url         ${fake.apiUrl}   (discord.js rest.api; DISCORD_API_URL)
  guild id        ${fake.guildId}
  public key      ${fake.publicKeyHex}   (to verify interactions POSTed over HTTP)`);

let printed = 0;
setInterval(() => {
  for (const call of fake.calls.slice(printed)) {
    console.log(`${call.status} ${call.route}${call.body ? ` ${JSON.stringify(call.body).slice(0, 160)}` : ''}${call.files.length ? ` +${call.files.length} file(s)` : ''}`);
  }
  printed = fake.calls.length;
}, 250).unref();

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const words = line.trim().split(/\s+/);
  const by = words[0] === 'mod' ? (words.shift(), fake.members.mod) : fake.members.alice;
  const [command, ...rest] = words;
  try {
    if (command === 'quit') break;
    else if (command === 'disconnect') fake.gateway.disconnect();
    else if (command === 'imagine') fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: rest.join(' ') }], by);
    else if (command === 'caption') {
      const attachment = fake.hostFile(basename(rest[0]!), await readFile(rest[0]!), 'image/png');
      fake.sendChatInput('caption', [{ name: 'image', type: OptionType.Attachment, value: attachment.id }], by, { attachments: { [attachment.id]: attachment } });
    } else if (command === 'quota') fake.sendChatInput('quota', [{ name: rest[0] ?? 'show', type: OptionType.Subcommand, options: [] }], by);
    else if (command) fake.sendChatInput(command, [], by);
  } catch (error) {
    console.error(String(error));
  }
}
await fake.stop();
process.exit(0);
