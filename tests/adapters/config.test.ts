import { coreConcurrency, imagineBatchOf, loadSettings, parseStartArgs, requirePlatform } from '../../adapters/config.js';

describe('loadSettings', () => {
  it('uses defaults when nothing is set', () => {
    const settings = loadSettings({});
    expect(settings.dbPath).toBe('./pictalk.sqlite');
    expect(settings.discord).toBeUndefined();
    expect(settings.slack).toBeUndefined();
    expect(settings.metricsPort).toBeUndefined();
    expect(settings.imagineBatch).toBeUndefined();
    expect(imagineBatchOf(settings)).toBe(4);                                   // the builtin model
    expect(imagineBatchOf(loadSettings({ PICTALK_T2I_MODEL: 'models/sd15' }))).toBe(1);   // an operator's model
    expect(imagineBatchOf(loadSettings({ PICTALK_T2I_MODEL: 'models/sd15', PICTALK_IMAGINE_BATCH: '8' }))).toBe(8);
    // two caption batches in flight: one searches on the main thread while the other's graphs run
    expect(coreConcurrency(settings)).toEqual({ imagine: 4, caption: 2 });
    expect(coreConcurrency(loadSettings({ PICTALK_IMAGINE_BATCH: '2' }))).toEqual({ imagine: 2, caption: 2 });
    expect(settings.bot.defaultDailyLimits).toEqual({ imagine: 20, caption: 50 });
    expect(settings.bot.rateLimit).toEqual({ capacity: 5, windowMs: 30_000 });
    expect(() => requirePlatform(settings)).toThrow(/No chat platform is configured/);
  });

  it('reads Discord, Slack Socket Mode and the other settings', () => {
    const settings = loadSettings({
      DISCORD_TOKEN: 'tok', DISCORD_APPLICATION_ID: '123456789012345678', DISCORD_API_URL: 'http://127.0.0.1:9999/api',
      SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', SLACK_API_URL: 'http://127.0.0.1:9998/api/',
      PICTALK_DB: '/var/lib/pictalk/db.sqlite', PICTALK_METRICS_PORT: '9464', PICTALK_T2I_MODEL: 'models/sd15',
      PICTALK_CAPTIONER: 'models/cap', PICTALK_MODERATOR_ROLE_IDS: '111, 222',
      PICTALK_DAILY_IMAGINE: '7', PICTALK_DAILY_CAPTION: '0', PICTALK_RATE_LIMIT: '3/1m', PICTALK_MAX_PROMPT_CHARS: '300',
      PICTALK_MAX_ATTACHMENT_BYTES: '1048576', PICTALK_JOB_TIMEOUT_MS: '60000', PICTALK_IMAGE_UPSCALE: '4',
      PICTALK_IMAGINE_BATCH: '1',
    });
    expect(settings.discord).toEqual({ token: 'tok', applicationId: '123456789012345678', apiUrl: 'http://127.0.0.1:9999/api' });
    expect(settings.slack).toEqual({ mode: 'socket', botToken: 'xoxb-1', appToken: 'xapp-1', apiUrl: 'http://127.0.0.1:9998/api/' });
    expect(settings).toMatchObject({ dbPath: '/var/lib/pictalk/db.sqlite', metricsPort: 9464, t2iModel: 'models/sd15', captioner: 'models/cap', imagineBatch: 1 });
    expect(settings.bot).toMatchObject({
      moderatorRoleIds: ['111', '222'], defaultDailyLimits: { imagine: 7, caption: 0 }, rateLimit: { capacity: 3, windowMs: 60_000 },
      maxPromptChars: 300, maxAttachmentBytes: 1048576, jobTimeoutMs: { imagine: 60_000 }, imageUpscale: 4,
    });
    expect(() => requirePlatform(settings)).not.toThrow();
  });

  it('reads Slack HTTP mode with its port', () => {
    expect(loadSettings({ SLACK_BOT_TOKEN: 'b', SLACK_SIGNING_SECRET: 's', PICTALK_SLACK_PORT: '8080' }).slack)
      .toEqual({ mode: 'http', botToken: 'b', signingSecret: 's', port: 8080 });
    expect(loadSettings({ SLACK_BOT_TOKEN: 'b', SLACK_SIGNING_SECRET: 's' }).slack).toMatchObject({ port: 3000 });
  });

  it('treats empty values as unset', () => {
    expect(loadSettings({ DISCORD_TOKEN: '', DISCORD_APPLICATION_ID: ' ', PICTALK_DB: '' }).dbPath).toBe('./pictalk.sqlite');
  });

  it.each([
    [{ DISCORD_TOKEN: 't' }, 'DISCORD_APPLICATION_ID', 'DISCORD_TOKEN is set but DISCORD_APPLICATION_ID is not; set both to run on Discord'],
    [{ DISCORD_APPLICATION_ID: '1' }, 'DISCORD_TOKEN', 'DISCORD_APPLICATION_ID is set but DISCORD_TOKEN is not; set both to run on Discord'],
    [{ DISCORD_TOKEN: 't', DISCORD_APPLICATION_ID: 'my-app' }, 'DISCORD_APPLICATION_ID', 'Expected DISCORD_APPLICATION_ID to be a numeric snowflake, got `"my-app"` (string)'],
    [{ DISCORD_TOKEN: 't', DISCORD_APPLICATION_ID: '1', DISCORD_API_URL: 'localhost:9' }, 'DISCORD_API_URL', 'Expected DISCORD_API_URL to be an http(s) URL, got `"localhost:9"` (string)'],
    [{ SLACK_BOT_TOKEN: 'b' }, 'SLACK_APP_TOKEN', 'SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP, with PICTALK_SLACK_PORT) is'],
    [{ SLACK_APP_TOKEN: 'a' }, 'SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not; Socket Mode needs both'],
    [{ PICTALK_SLACK_PORT: 'eighty' }, 'PICTALK_SLACK_PORT', 'Expected PICTALK_SLACK_PORT to be an integer from 1 to 65535, got `"eighty"` (string)'],
    [{ PICTALK_METRICS_PORT: '70000' }, 'PICTALK_METRICS_PORT', 'Expected PICTALK_METRICS_PORT to be an integer from 1 to 65535, got `"70000"` (string)'],
    [{ PICTALK_METRICS_PORT: '9464.5' }, 'PICTALK_METRICS_PORT', 'Expected PICTALK_METRICS_PORT to be an integer from 1 to 65535, got `"9464.5"` (string)'],
    [{ PICTALK_DAILY_IMAGINE: '-1' }, 'PICTALK_DAILY_IMAGINE', 'Expected PICTALK_DAILY_IMAGINE to be an integer from 0 to 100000, got `"-1"` (string)'],
    [{ PICTALK_RATE_LIMIT: '5 per minute' }, 'PICTALK_RATE_LIMIT', 'Expected PICTALK_RATE_LIMIT like `5/30s` (commands per window in ms, s or m), got `"5 per minute"` (string)'],
    [{ PICTALK_MODERATOR_ROLE_IDS: '1,,2' }, 'PICTALK_MODERATOR_ROLE_IDS', 'Expected PICTALK_MODERATOR_ROLE_IDS to be comma-separated role ids, got `"1,,2"` (string)'],
  ])('stops on %j naming the setting', (env, setting, message) => {
    expect(() => loadSettings(env)).toThrow(expect.objectContaining({ code: 'config.invalid', message, details: { settings: [setting] } }));
  });

  describe('Discord HTTP interactions and shards', () => {
    const base = { DISCORD_TOKEN: 'tok', DISCORD_APPLICATION_ID: '123456789012345678' };
    const key = 'AB'.repeat(32);

    it('reads HTTP interactions mode from DISCORD_PUBLIC_KEY with PICTALK_DISCORD_HTTP_PORT', () => {
      expect(loadSettings({ ...base, DISCORD_PUBLIC_KEY: key, PICTALK_DISCORD_HTTP_PORT: '8443' }).discord)
        .toEqual({ ...{ token: 'tok', applicationId: '123456789012345678' }, http: { publicKey: key.toLowerCase(), port: 8443 } });
    });

    it('reads the shard count and this process\'s shard ids', () => {
      expect(loadSettings({ ...base, PICTALK_DISCORD_SHARDS: 'auto' }).discord!.shards).toEqual({ count: 'auto' });
      expect(loadSettings({ ...base, PICTALK_DISCORD_SHARDS: '4', PICTALK_DISCORD_SHARD_IDS: '2, 3' }).discord!.shards).toEqual({ count: 4, ids: [2, 3] });
      expect(loadSettings({ ...base, PICTALK_DISCORD_SHARD_IDS: '0' }).discord!.shards).toEqual({ count: 'auto', ids: [0] });
      expect(loadSettings(base).discord!.shards).toBeUndefined();
    });

    it.each([
      [{ DISCORD_PUBLIC_KEY: 'abc', PICTALK_DISCORD_HTTP_PORT: '8443' }, 'DISCORD_PUBLIC_KEY', /64 hexadecimal characters, got `"abc"`/],
      [{ DISCORD_PUBLIC_KEY: 'g'.repeat(64), PICTALK_DISCORD_HTTP_PORT: '8443' }, 'DISCORD_PUBLIC_KEY', /64 hexadecimal characters/],
      [{ DISCORD_PUBLIC_KEY: key }, 'PICTALK_DISCORD_HTTP_PORT', /DISCORD_PUBLIC_KEY is set but PICTALK_DISCORD_HTTP_PORT is not/],
      [{ PICTALK_DISCORD_HTTP_PORT: '8443' }, 'DISCORD_PUBLIC_KEY', /PICTALK_DISCORD_HTTP_PORT is set but DISCORD_PUBLIC_KEY is not/],
      [{ DISCORD_PUBLIC_KEY: key, PICTALK_DISCORD_HTTP_PORT: '99999' }, 'PICTALK_DISCORD_HTTP_PORT', /integer from 1 to 65535, got `"99999"`/],
      [{ PICTALK_DISCORD_SHARDS: 'many' }, 'PICTALK_DISCORD_SHARDS', /`auto` or a shard count from 1 to 65536, got `"many"`/],
      [{ PICTALK_DISCORD_SHARDS: '0' }, 'PICTALK_DISCORD_SHARDS', /shard count/],
      [{ PICTALK_DISCORD_SHARDS: '2', PICTALK_DISCORD_SHARD_IDS: '1,2' }, 'PICTALK_DISCORD_SHARD_IDS', /shard ids from 0 to 1, got `"1,2"`/],
      [{ PICTALK_DISCORD_SHARDS: '4', PICTALK_DISCORD_SHARD_IDS: '1,,2' }, 'PICTALK_DISCORD_SHARD_IDS', /comma-separated/],
      [{ PICTALK_DISCORD_SHARDS: '4', PICTALK_DISCORD_SHARD_IDS: '1,1' }, 'PICTALK_DISCORD_SHARD_IDS', /distinct/],
      [{ PICTALK_DISCORD_SHARD_IDS: '-1' }, 'PICTALK_DISCORD_SHARD_IDS', /shard ids >= 0/],
      [{ DISCORD_PUBLIC_KEY: key, PICTALK_DISCORD_HTTP_PORT: '8443', PICTALK_DISCORD_SHARDS: '2' }, 'PICTALK_DISCORD_SHARDS', /opens no gateway/],
    ])('stops on %j naming the setting', (env, setting, message) => {
      expect(() => loadSettings({ ...base, ...env })).toThrow(expect.objectContaining({ code: 'config.invalid', message: expect.stringMatching(message), details: { settings: [setting] } }));
    });

    it('refuses the Discord modes without the bot token', () => {
      expect(() => loadSettings({ DISCORD_PUBLIC_KEY: key, PICTALK_DISCORD_HTTP_PORT: '8443' })).toThrow(/DISCORD_PUBLIC_KEY is set but DISCORD_TOKEN and DISCORD_APPLICATION_ID are not/);
      expect(() => loadSettings({ PICTALK_DISCORD_SHARDS: '2' })).toThrow(/PICTALK_DISCORD_SHARDS is set but DISCORD_TOKEN/);
    });
  });

  it('reads PICTALK_DATABASE_URL and refuses one that is not a postgres URL, hiding its password', () => {
    expect(loadSettings({ PICTALK_DATABASE_URL: 'postgres://u:p@db:5432/pictalk' }).databaseUrl).toBe('postgres://u:p@db:5432/pictalk');
    expect(loadSettings({}).databaseUrl).toBeUndefined();
    expect(() => loadSettings({ PICTALK_DATABASE_URL: 'mysql://u:hunter2@db/pictalk' })).toThrow(
      expect.objectContaining({ code: 'config.invalid', details: { settings: ['PICTALK_DATABASE_URL'] }, message: expect.not.stringContaining('hunter2') }));
  });

  it('reads PICTALK_PREVIEW_AFTER_MS: a number of milliseconds or off, and names it when it is neither', () => {
    expect(loadSettings({}).previewAfterMs).toBeUndefined();
    expect(loadSettings({ PICTALK_PREVIEW_AFTER_MS: '0' }).previewAfterMs).toBe(0);
    expect(loadSettings({ PICTALK_PREVIEW_AFTER_MS: '5000' }).previewAfterMs).toBe(5000);
    expect(loadSettings({ PICTALK_PREVIEW_AFTER_MS: 'off' }).previewAfterMs).toBe('off');
    expect(() => loadSettings({ PICTALK_PREVIEW_AFTER_MS: 'soon' })).toThrow('Expected PICTALK_PREVIEW_AFTER_MS to be `off` or an integer from 0 to 600000 (milliseconds), got `"soon"` (string)');
  });

  it('reads PICTALK_CAPTION_LANES from 1 to 4, and names it when it is out of range', () => {
    expect(loadSettings({}).captionLanes).toBeUndefined();
    expect(loadSettings({ PICTALK_CAPTION_LANES: '1' }).captionLanes).toBe(1);
    expect(loadSettings({ PICTALK_CAPTION_LANES: '4' }).captionLanes).toBe(4);
    expect(() => loadSettings({ PICTALK_CAPTION_LANES: '0' })).toThrow('Expected PICTALK_CAPTION_LANES to be an integer from 1 to 4, got `"0"` (string)');
    expect(() => loadSettings({ PICTALK_CAPTION_LANES: 'two' })).toThrow('PICTALK_CAPTION_LANES');
  });

  it('refuses an imagine batch outside 1..16', () => {
    expect(() => loadSettings({ PICTALK_IMAGINE_BATCH: '0' })).toThrow('Expected PICTALK_IMAGINE_BATCH to be an integer from 1 to 16, got `"0"` (string)');
    expect(() => loadSettings({ PICTALK_IMAGINE_BATCH: 'many' })).toThrow('PICTALK_IMAGINE_BATCH');
  });

  it('reports every bad setting at once', () => {
    expect(() => loadSettings({ DISCORD_TOKEN: 't', PICTALK_METRICS_PORT: 'x' })).toThrow(
      '2 settings are wrong:\n- DISCORD_TOKEN is set but DISCORD_APPLICATION_ID is not; set both to run on Discord\n' +
      '- Expected PICTALK_METRICS_PORT to be an integer from 1 to 65535, got `"x"` (string)');
  });
});

describe('the cluster settings', () => {
  it('reads --role, defaulting to all, and names a wrong role or option', () => {
    expect(parseStartArgs([])).toEqual({ role: 'all' });
    expect(parseStartArgs(['--role', 'front'])).toEqual({ role: 'front' });
    expect(parseStartArgs(['--role=worker'])).toEqual({ role: 'worker' });
    expect(() => parseStartArgs(['--role', 'boss'])).toThrow(/--role to be one of all, front, worker, got `"boss"`/);
    expect(() => parseStartArgs(['--role'])).toThrow(/--role to be one of/);
    expect(() => parseStartArgs(['--verbose'])).toThrow(/Unknown option `"--verbose"`/);
  });

  it('needs PICTALK_REDIS_URL for a front or a worker, not for the single process', () => {
    expect(loadSettings({}).redisUrl).toBeUndefined();
    expect(loadSettings({}).workerLockMs).toBe(30_000);
    for (const role of ['front', 'worker'] as const) {
      expect(() => loadSettings({}, role)).toThrow(/PICTALK_REDIS_URL/);
    }
    const settings = loadSettings({ PICTALK_REDIS_URL: 'redis://127.0.0.1:6380/2', PICTALK_WORKER_LOCK_MS: '1500' }, 'worker');
    expect(settings).toMatchObject({ redisUrl: 'redis://127.0.0.1:6380/2', workerLockMs: 1500 });
    for (const url of ['redis://127.0.0.1:6380', 'redis://127.0.0.1:6380/', 'rediss://:secret@cache.internal:6380/0']) {
      expect(loadSettings({ PICTALK_REDIS_URL: url }, 'front').redisUrl).toBe(url);
    }
    expect(() => loadSettings({ PICTALK_REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/PICTALK_REDIS_URL to be redis:\/\/host:port\/db/);
    expect(() => loadSettings({ PICTALK_REDIS_URL: 'redis://u:hunter2@h:1/x' })).toThrow(/\*\*\*/);
    expect(() => loadSettings({ PICTALK_WORKER_LOCK_MS: '5' })).toThrow(/PICTALK_WORKER_LOCK_MS to be an integer from 100/);
  });
});
