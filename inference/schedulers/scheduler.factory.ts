/**
 * Build any of pictalk's schedulers from a folder's scheduler_config.json, whichever class wrote it, the way
 * diffusers' `SchedulerClass.from_config(config)` does (e.g. an SD 1.x PNDM config driving Euler ancestral).
 */
import { PictalkError, describe } from '../../common/errors.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../types.js';
import { DdimScheduler } from './ddim.scheduler.js';
import { DpmSolverPlusPlus2MScheduler } from './dpmpp-2m.scheduler.js';
import { EulerAncestralScheduler } from './euler-ancestral.scheduler.js';
import { LcmScheduler } from './lcm.scheduler.js';
import { PndmScheduler } from './pndm.scheduler.js';
import type { Scheduler } from './scheduler.js';
import { SCHEDULER_CLASSES, resolveSchedulerConfig, type SchedulerClassName } from './scheduler.config.js';

export interface CreateSchedulerOptions {
  /** Where the config came from, for error messages. */
  source?: string;
  /** DDIM's eta (0: deterministic). */
  eta?: number;
}

/** pictalk's name for a diffusers class name, or undefined when pictalk does not implement that class. */
export function schedulerNameForClass(className: string): SchedulerName | undefined {
  return Object.hasOwn(SCHEDULER_CLASSES, className) ? SCHEDULER_CLASSES[className as SchedulerClassName].name : undefined;
}

/**
 * `name`: a pictalk name (`pndm`, `ddim`, `euler-a`, `dpmpp-2m`, `lcm`), a diffusers class name, or undefined to use
 * the config's own `_class_name`. `config`: the parsed scheduler_config.json. A string third argument is taken as
 * `options.source`. `setTimesteps` comes next.
 */
export function createScheduler(
  name: SchedulerName | string | undefined, config: unknown, optionsOrSource: CreateSchedulerOptions | string = {},
): Scheduler {
  // a plain string is the source label, for callers that only name where the config came from
  const options = typeof optionsOrSource === 'string' ? { source: optionsOrSource } : optionsOrSource;
  const source = options.source ?? 'scheduler_config.json';
  const wanted = name ?? (typeof config === 'object' && config !== null ? (config as { _class_name?: unknown })._class_name : undefined);
  const entry = Object.entries(SCHEDULER_CLASSES).find(([className, { name: short }]) => wanted === className || wanted === short);
  if (!entry) {
    const known = [...SCHEDULER_NAMES, ...Object.keys(SCHEDULER_CLASSES)].join(', ');
    const code = name === undefined ? 'model.invalid' : 'input.invalid';
    throw new PictalkError(code, `Expected a scheduler (${known})${name === undefined ? ` as _class_name in ${source}` : ''}, got ${describe(wanted)}`, { path: source });
  }
  const className = entry[0] as SchedulerClassName;
  const overrides: Record<string, unknown> = {};
  if (options.eta !== undefined) overrides.eta = options.eta;
  if (className === 'DPMSolverMultistepScheduler') {
    // 'dpmpp-2m' is DPM-Solver++ of order 2 whatever the folder's DPM config says (diffusers users pass the same overrides).
    Object.assign(overrides, { algorithm_type: 'dpmsolver++', solver_order: 2 });
  }
  const resolved = resolveSchedulerConfig(config, className, source, overrides);
  switch (className) {
    case 'PNDMScheduler': return new PndmScheduler(resolved);
    case 'DDIMScheduler': return new DdimScheduler(resolved);
    case 'EulerAncestralDiscreteScheduler': return new EulerAncestralScheduler(resolved);
    case 'LCMScheduler': return new LcmScheduler(resolved);
    case 'DPMSolverMultistepScheduler': {
      const raw = config as Record<string, unknown>;
      const defaulted = Array.isArray(raw._use_default_values) ? raw._use_default_values : [];
      const solverType = raw.solver_type === undefined || defaulted.includes('solver_type') ? 'midpoint' : raw.solver_type;
      if (solverType !== 'midpoint' && solverType !== 'heun') {
        throw new PictalkError('model.invalid', `Expected \`solver_type\` in ${source} to be midpoint or heun, got ${describe(solverType)}`, { path: source });
      }
      return new DpmSolverPlusPlus2MScheduler(resolved, solverType);
    }
  }
}
