/**
 * The cluster's deployment files (Dockerfile, deploy/compose.cluster.yaml, deploy/prometheus.cluster.yml,
 * deploy/kubernetes/cluster.yaml) against what the code expects: a wrong role, a missing Redis URL, a worker pinned to
 * one name or host port, a GPU image without CUDA, or a misspelt setting all start without an error and fail quietly.
 *
 * There is no YAML parser among the dependencies, so the files are read structurally: a block is a key's line and every
 * deeper line after it, found by indentation. The files keep to that shape (flow maps `{ a: b }` and JSON-style
 * arrays on one line, no anchors).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = process.cwd();
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

/** The text without its comments: whole comment lines go, and ` # …` tails (no value in these files holds ` #`). */
function uncommented(text: string): string {
  return text.split('\n').filter((line) => !/^\s*#/.test(line)).map((line) => line.replace(/\s+#.*$/, '')).join('\n');
}

const depth = (line: string): number => line.search(/\S/);

/** The keys at exactly `indent` spaces, each with its block: its own line and every deeper line up to the next key. */
function blocks(text: string, indent: number): Map<string, string> {
  const found = new Map<string, string>();
  const key = new RegExp(`^ {${indent}}([A-Za-z0-9_./-]+):`);
  let name: string | undefined;
  let lines: string[] = [];
  const flush = (): void => { if (name !== undefined) found.set(name, lines.join('\n')); };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (depth(line) <= indent) {
      flush();
      name = key.exec(line)?.[1];
      lines = [];
    }
    if (name !== undefined) lines.push(line);
  }
  flush();
  return found;
}

/** The value of the first `key:` in a block: the rest of its line (a scalar, `[…]` or `{…}`), else its deeper lines. */
function valueOf(block: string, key: string): string | undefined {
  const lines = block.split('\n');
  const at = lines.findIndex((line) => new RegExp(`^\\s*(- )?${key.replace(/[.]/g, '\\.')}:(\\s|$)`).test(line));
  if (at === -1) return undefined;
  const line = lines[at]!;
  const rest = line.slice(line.indexOf(`${key}:`) + key.length + 1).trim();
  if (rest !== '') return rest;
  const nested: string[] = [];
  for (const next of lines.slice(at + 1)) {
    if (depth(next) <= depth(line)) break;
    nested.push(next);
  }
  return nested.join('\n');
}

/** A one-line JSON-style array (`["node", "bin/pictalk.js", …]`). */
function arrayOf(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : JSON.parse(value) as string[];
}

/** A one-line flow map (`{ app: pictalk-front }`) as a record. */
function flowMap(value: string | undefined): Record<string, string> {
  const inner = value?.trim().replace(/^\{|\}$/g, '') ?? '';
  return Object.fromEntries(inner.split(',').filter((pair) => pair.includes(':')).map((pair) => {
    const [key, ...rest] = pair.split(':');
    return [key!.trim(), rest.join(':').trim().replace(/^"|"$/g, '')];
  }));
}

/** The `--role` a `pictalk start` command line asks for (`--role x` or `--role=x`), or undefined. */
function roleOf(command: string[] | undefined): string | undefined {
  if (!command?.includes('start')) return undefined;
  const at = command.indexOf('--role');
  if (at !== -1) return command[at + 1];
  return command.find((arg) => arg.startsWith('--role='))?.slice('--role='.length);
}

/** The host of a connection URL (`redis://redis:6379/0` → `redis`), whatever its user part holds. */
function hostOf(url: string | undefined): string | undefined {
  return url === undefined ? undefined : /^[a-z]+:\/\/(?:[^@/]*@)?([^:/@]+)/.exec(url.replace(/^"|"$/g, ''))?.[1];
}

/** A compose duration (`5m`, `90s`, `1m30s`) in milliseconds. */
function durationMs(text: string | undefined): number {
  let ms = 0;
  for (const [, amount, unit] of (text ?? '').matchAll(/(\d+)(ms|h|m|s)/g)) {
    ms += Number(amount) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return ms;
}

// ---- deploy/compose.cluster.yaml ----

const composeText = uncommented(read('deploy/compose.cluster.yaml'));
const services = blocks(blocks(composeText, 0).get('services') ?? '', 2);
const service = (name: string): string => {
  const block = services.get(name);
  if (block === undefined) throw new Error(`deploy/compose.cluster.yaml has no service \`${name}\`; it has ${[...services.keys()].join(', ')}`);
  return block;
};
/** The worker services: `worker` and any other that runs `--role worker` (the GPU one). */
const workerServices = [...services].filter(([, block]) => roleOf(arrayOf(valueOf(block, 'command'))) === 'worker').map(([name]) => name);
/** The services a compose service waits for (`depends_on`, as a list or as a map of conditions), each with its block. */
function dependsOn(name: string): Map<string, string> {
  const value = valueOf(service(name), 'depends_on');
  if (value === undefined) return new Map();
  if (value.startsWith('[')) return new Map(value.slice(1, -1).split(',').map((other) => [other.trim(), '']));
  return blocks(value, depth(value));
}
const environment = (name: string, variable: string): string | undefined => {
  const env = valueOf(service(name), 'environment');
  return env === undefined ? undefined : valueOf(env, variable);
};

// ---- Dockerfile ----

interface Stage { name?: string; from: string; text: string }

const dockerfile = uncommented(read('Dockerfile'));
const globalArgs = new Map([...(dockerfile.split(/^FROM\s/im)[0] ?? '').matchAll(/^ARG\s+(\w+)=(\S+)/gm)].map(([, name, value]) => [name!, value!]));
const stages: Stage[] = dockerfile.split(/^(?=FROM\s)/im).filter((part) => /^FROM\s/i.test(part)).map((text) => {
  const [, from, name] = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(text)!;
  return { from: from!, text, ...(name ? { name } : {}) };
});
const stage = (name: string): Stage => {
  const found = stages.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`The Dockerfile has no stage \`${name}\`; it has ${stages.map((s) => s.name ?? s.from).join(', ')}`);
  return found;
};
/** The image a stage starts from, through the stages it builds on and the global ARG defaults. */
function baseImage(of: Stage): string {
  const from = of.from.replace(/\$\{?(\w+)\}?/g, (_, arg: string) => globalArgs.get(arg) ?? '');
  const parent = stages.find((candidate) => candidate.name === from);
  return parent ? baseImage(parent) : from;
}
const cmdOf = (of: Stage): string[] | undefined => arrayOf(/^CMD\s+(\[.*\])\s*$/m.exec(of.text)?.[1]);

// ---- deploy/kubernetes/cluster.yaml ----

const kubeDocs = read('deploy/kubernetes/cluster.yaml').split(/^---\s*$/m).map(uncommented).filter((doc) => /^kind:/m.test(doc));
const kube = (kind: string, name: string): string => {
  const found = kubeDocs.find((doc) => new RegExp(`^kind:\\s*${kind}\\s*$`, 'm').test(doc)
    && valueOf(blocks(doc, 0).get('metadata') ?? '', 'name') === name);
  if (!found) throw new Error(`deploy/kubernetes/cluster.yaml has no ${kind} \`${name}\``);
  return found;
};
const envNames = (doc: string): string[] => [...doc.matchAll(/name:\s*(PICTALK_[A-Z0-9_]+)/g)].map(([, name]) => name!);
const probePath = (doc: string, probe: string): string | undefined => /path:\s*([^,}\s]+)/.exec(valueOf(doc, probe) ?? '')?.[1];

// ---- the checks ----

describe('deploy/compose.cluster.yaml', () => {
  test('has redis, postgres, front and worker services', () => {
    expect([...services.keys()]).toEqual(expect.arrayContaining(['redis', 'postgres', 'front', 'worker']));
  });

  test('front runs `start --role front` and worker runs `start --role worker`', () => {
    expect(roleOf(arrayOf(valueOf(service('front'), 'command')))).toBe('front');
    expect(roleOf(arrayOf(valueOf(service('worker'), 'command')))).toBe('worker');
  });

  test('every worker reaches Redis; the front reaches Redis and PostgreSQL, by service names of this file', () => {
    expect(workerServices).toContain('worker');
    for (const name of ['front', ...workerServices]) {
      const url = environment(name, 'PICTALK_REDIS_URL');
      expect({ name, url }).toEqual({ name, url: expect.stringMatching(/^redis:\/\//) });
      expect([...services.keys()]).toContain(hostOf(url));
    }
    const database = environment('front', 'PICTALK_DATABASE_URL');
    expect(database).toMatch(/^postgres(ql)?:\/\//);
    expect([...services.keys()]).toContain(hostOf(database));
  });

  test('a worker never opens the database: it gets no PICTALK_DATABASE_URL and does not wait for postgres', () => {
    for (const name of workerServices) {
      expect({ name, database: environment(name, 'PICTALK_DATABASE_URL') }).toEqual({ name, database: undefined });
      expect({ name, waitsForPostgres: dependsOn(name).has('postgres') }).toEqual({ name, waitsForPostgres: false });
    }
  });

  test('the front starts only once Redis and PostgreSQL are healthy, and both have a healthcheck', () => {
    const waits = dependsOn('front');
    for (const name of ['redis', 'postgres']) {
      expect({ name, condition: valueOf(waits.get(name) ?? '', 'condition') }).toEqual({ name, condition: 'service_healthy' });
      expect({ name, healthcheck: valueOf(service(name), 'healthcheck') !== undefined }).toEqual({ name, healthcheck: true });
    }
  });

  test('workers scale with --scale: no container_name, no host ports, and time to finish a job on stop', () => {
    for (const name of workerServices) {
      const block = service(name);
      expect({ name, containerName: valueOf(block, 'container_name'), ports: valueOf(block, 'ports') })
        .toEqual({ name, containerName: undefined, ports: undefined });
      // compose's default stop_grace_period is 10 s, after which it kills the jobs in flight
      expect({ name, graceAtLeast60s: durationMs(valueOf(block, 'stop_grace_period')) >= 60_000 }).toEqual({ name, graceAtLeast60s: true });
    }
  });

  test('redis keeps its jobs across restarts: append-only file on a volume', () => {
    const command = arrayOf(valueOf(service('redis'), 'command')) ?? [];
    expect(command[command.indexOf('--appendonly') + 1]).toBe('yes');
    expect(valueOf(service('redis'), 'volumes')).toMatch(/:\/data\b/);
    expect(valueOf(service('postgres'), 'volumes')).toMatch(/:\/var\/lib\/postgresql\/data\b/);
  });

  test('each build target is a Dockerfile stage: the CPU services build `runtime`, a GPU worker `gpu-worker` with a GPU', () => {
    const stageNames = stages.map((stage) => stage.name);
    for (const [name, block] of services) {
      const target = valueOf(valueOf(block, 'build') ?? '', 'target');
      if (target === undefined) continue;
      expect({ name, target, isStage: stageNames.includes(target) }).toEqual({ name, target, isStage: true });
      if (target === 'gpu-worker') expect(valueOf(block, 'driver')).toBe('nvidia');
    }
    expect(valueOf(valueOf(service('front'), 'build') ?? '', 'target') ?? 'runtime').toBe('runtime');
  });
});

// ---- deploy/prometheus.cluster.yml ----

describe('deploy/prometheus.cluster.yml', () => {
  const prometheus = uncommented(read('deploy/prometheus.cluster.yml'));
  const dns = [...prometheus.matchAll(/names:\s*\[([^\]]*)\][\s\S]*?port:\s*(\d+)/g)].map(([, names, port]) => ({
    names: names!.split(',').map((name) => name.trim().replace(/^["']|["']$/g, '')), port: Number(port),
  }));

  test('the compose file mounts it into its prometheus service', () => {
    expect(valueOf(service('prometheus'), 'volumes')).toMatch(/\.\/prometheus\.cluster\.yml:\/etc\/prometheus\/prometheus\.yml/);
  });

  test('discovers front and worker by DNS (type A) on the metrics port they listen on', () => {
    expect(prometheus).toMatch(/dns_sd_configs:/);
    expect(prometheus).toMatch(/type:\s*A\b/);
    expect(dns.flatMap((entry) => entry.names)).toEqual(expect.arrayContaining(['front', 'worker']));
    for (const name of ['front', ...workerServices]) {
      expect({ name, port: Number(environment(name, 'PICTALK_METRICS_PORT')?.replace(/"/g, '')) }).toEqual({ name, port: 9464 });
    }
    for (const entry of dns) expect(entry.port).toBe(9464);
  });

  test('every name it looks up is a service or a network alias of the compose file (else it scrapes nothing)', () => {
    const aliases = [...composeText.matchAll(/aliases:\s*\[([^\]]*)\]/g)].flatMap(([, list]) => list!.split(',').map((name) => name.trim()));
    for (const name of dns.flatMap((entry) => entry.names)) {
      expect({ name, known: services.has(name) || aliases.includes(name) }).toEqual({ name, known: true });
    }
  });
});

describe('Dockerfile', () => {
  test('still ends with the CPU `runtime` stage, which starts role all (what `docker build .` gives)', () => {
    const last = stages.at(-1)!;
    expect(last.name).toBe('runtime');
    expect(baseImage(last)).toMatch(/^node:20\b/);
    expect(cmdOf(last)).toEqual(['node', 'bin/pictalk.js', 'start']);
  });

  test('has a gpu-worker stage on CUDA with cuDNN, the CUDA major onnxruntime-node downloads its provider for', () => {
    // install-metadata.js: requirements: { 'linux/x64': ['cuda12'] } names the CUDA build the install script fetches
    const metadata = read('node_modules/onnxruntime-node/script/install-metadata.js');
    const cudaMajor = /'linux\/x64':\s*\[\s*'cuda(\d+)'/.exec(metadata)?.[1];
    expect(cudaMajor).toBeDefined();
    expect(baseImage(stage('gpu-worker'))).toMatch(new RegExp(`^nvidia/cuda:${cudaMajor}\\.[\\d.]+-cudnn[\\w.-]*-runtime-`));
  });

  test('the gpu-worker runs `start --role worker` on CUDA, as a non-root user, with a /healthz health check', () => {
    const gpu = stage('gpu-worker');
    expect(roleOf(cmdOf(gpu))).toBe('worker');
    expect(gpu.text).toMatch(/\bPICTALK_EXECUTION_PROVIDER=cuda\b/);
    expect(/^USER\s+(\S+)/m.exec(gpu.text)?.[1]).toMatch(/^(?!root$|0$)/);
    expect(gpu.text).toMatch(/^HEALTHCHECK[\s\S]*\/healthz/m);
  });

  test("the gpu-worker's node_modules come from a stage on the CUDA base that downloads onnxruntime's CUDA provider", () => {
    const source = /^COPY\s+--from=(\S+)\s.*\bnode_modules\s*$/m.exec(stage('gpu-worker').text)?.[1];
    expect(source).toBeDefined();
    const deps = stage(source!);
    // installed on the CUDA base itself: native addons built on bookworm's newer glibc need not load on Ubuntu's
    expect(baseImage(deps)).toBe(baseImage(stage('gpu-worker')));
    expect(deps.text).toMatch(/ONNXRUNTIME_NODE_INSTALL=1\s+node\s+node_modules\/onnxruntime-node\/script\/install\.js/);
    expect(deps.text).toMatch(/libonnxruntime_providers_cuda\.so/);
    // and onnxruntime-node still reads that variable and forces the download on `1`
    const utils = read('node_modules/onnxruntime-node/script/install-utils.js');
    const parseInstallFlag = /function parseInstallFlag\(\)[\s\S]*?\n}\n/.exec(utils)?.[0] ?? '';
    expect(parseInstallFlag).toMatch(/process\.env\.ONNXRUNTIME_NODE_INSTALL\b/);
    expect(parseInstallFlag).toMatch(/case '1':[\s\S]*?return true;/);
  });
});

describe('deploy/kubernetes/cluster.yaml', () => {
  test('pictalk-front runs `start --role front`, several replicas, with Redis and PostgreSQL URLs', () => {
    const front = kube('Deployment', 'pictalk-front');
    expect(roleOf(arrayOf(valueOf(front, 'command')))).toBe('front');
    expect(Number(valueOf(front, 'replicas'))).toBeGreaterThanOrEqual(2);
    expect(envNames(front)).toEqual(expect.arrayContaining(['PICTALK_REDIS_URL', 'PICTALK_DATABASE_URL']));
    expect(probePath(front, 'readinessProbe')).toBe('/healthz');
    expect(probePath(front, 'livenessProbe')).toBe('/healthz');
  });

  test('pictalk-worker runs `start --role worker` on the gpu-worker image with one GPU, Redis only', () => {
    const worker = kube('Deployment', 'pictalk-worker');
    expect(roleOf(arrayOf(valueOf(worker, 'command')))).toBe('worker');
    expect(valueOf(worker, 'image')).toMatch(/gpu-worker/);
    expect(valueOf(valueOf(worker, 'resources') ?? '', 'limits')).toMatch(/nvidia\.com\/gpu:\s*"?1"?\b/);
    expect(valueOf(valueOf(worker, 'resources') ?? '', 'requests')).toMatch(/nvidia\.com\/gpu:\s*"?1"?\b/);
    expect(envNames(worker)).toContain('PICTALK_REDIS_URL');
    expect(envNames(worker)).not.toContain('PICTALK_DATABASE_URL');
    expect(probePath(worker, 'readinessProbe')).toBe('/healthz');
    // long enough for a worker to finish its running jobs after SIGTERM
    expect(Number(valueOf(worker, 'terminationGracePeriodSeconds'))).toBeGreaterThanOrEqual(60);
  });

  test('the front Service selects the front pods, and no pod answers to the single-process Service `app: pictalk`', () => {
    const service = kube('Service', 'pictalk-front');
    const selector = flowMap(valueOf(valueOf(service, 'spec') ?? '', 'selector'));
    const labelsOf = (deployment: string): Record<string, string> =>
      flowMap(valueOf(valueOf(valueOf(deployment, 'template') ?? '', 'metadata') ?? '', 'labels'));
    expect(Object.keys(selector).length).toBeGreaterThan(0);
    expect(labelsOf(kube('Deployment', 'pictalk-front'))).toMatchObject(selector);
    expect(valueOf(service, 'ports')).toMatch(/port:\s*3000\b/);
    for (const name of ['pictalk-front', 'pictalk-worker']) {
      expect({ name, app: labelsOf(kube('Deployment', name)).app }).not.toEqual({ name, app: 'pictalk' });
    }
  });

  test('both pods carry Prometheus scrape annotations on the metrics port they listen on', () => {
    for (const name of ['pictalk-front', 'pictalk-worker']) {
      const deployment = kube('Deployment', name);
      expect(deployment).toMatch(/prometheus\.io\/scrape:\s*"true"/);
      expect(deployment).toMatch(/prometheus\.io\/port:\s*"9464"/);
      expect(deployment).toMatch(/PICTALK_METRICS_PORT,\s*value:\s*"9464"/);
    }
  });
});

// ---- every PICTALK_* setting the deployment files set is one pictalk reads ----

test('every PICTALK_* setting the deployment files set is read by the code (a misspelt one is ignored silently)', () => {
  const sources = ['common', 'inference', 'bot', 'adapters'].flatMap((folder) =>
    (readdirSync(join(root, folder), { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts'))
      .map((file) => read(join(folder, file))));
  const known = new Set(sources.flatMap((source) => [...source.matchAll(/\bPICTALK_[A-Z0-9_]+/g)].map(([name]) => name)));
  const set = new Set([
    ...[...composeText.matchAll(/^\s*(PICTALK_[A-Z0-9_]+):/gm)].map(([, name]) => name!),
    ...kubeDocs.flatMap(envNames),
    ...[...dockerfile.matchAll(/\b(PICTALK_[A-Z0-9_]+)=/g)].map(([, name]) => name!),
    ...[...read('deploy/pictalk.env.example').matchAll(/^#?\s*(PICTALK_[A-Z0-9_]+)=/gm)].map(([, name]) => name!),
  ]);
  expect(set.size).toBeGreaterThan(5);
  expect([...set].filter((name) => !known.has(name))).toEqual([]);
});
