/**
 * Cross-request batching of UNet calls. Every imagine job that is running at the same time (the core's imagine
 * lane with a concurrency above 1) asks for one UNet call per denoising step; the batcher merges the calls that
 * wait at the same moment and have equal shapes into ONE session run, and hands each caller its own rows back.
 *
 * - One run at a time per UNet: calls that arrive while a run is in flight wait for it and then go together, so
 *   jobs fall into step with each other without any of them waiting for a timer.
 * - Rows of different jobs may be at different timesteps when the graph takes one timestep per row (diffusers
 *   exports name that input `timestep` with a batch dimension); a graph with a single timestep value only merges
 *   calls at the same timestep.
 * - Shapes must match: latent size, text length and width, input dtypes. Other calls wait for a later run.
 * - `maxRows` bounds a merged run (memory, and latency for the jobs in it).
 * - A failed run fails the calls that were in it and nothing else; the next run starts as usual.
 * - Rows do not see each other in a UNet, so a merged run gives each caller what a run of its own gives; a graph that
 *   quantizes its activations per run (the builtin int8 UNet's linear layers: one scale over every row of the run)
 *   gives it to within rounding, a step of 255 in the final picture, not to the bit.
 * - A graph that takes each latent once (pictalk.json `unet_shared_latents`) gets m latents and k = r * m text rows
 *   per call, text row j with latent j mod m; calls with the same r merge, their latents one after the other and
 *   their text rows in r blocks (block b: every call's b-th block), so the rule holds for the merged run too.
 */
import { PictalkError } from '../common/errors.js';
import type { OnnxModel, TensorValue } from './onnx.backend.js';

export interface UnetCall {
  /** [m, C, h, w]: one latent per text row, or each latent once when the graph shares latents (m divides k). */
  sample: Float32Array;
  /** One value per latent when the graph takes one per row, else a single value. */
  timestep: BigInt64Array | Float32Array;
  /** [k, L, D]: text row j goes with latent j mod m. */
  context: Float32Array;
  /** m, C, h, w */
  sampleDims: readonly [number, number, number, number];
  /** k, L, D */
  contextDims: readonly [number, number, number];
  /** Filled with the noise prediction, one per text row: [k, C, h, w]. */
  out: Float32Array;
}

export interface UnetBatcherStats {
  /** Session runs so far. */
  runs: number;
  /** Calls served so far (a merged run serves several). */
  calls: number;
  /** The most calls merged into one run. */
  maxMerged: number;
}

interface Pending {
  call: UnetCall;
  key: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class UnetBatcher {
  private readonly pending: Pending[] = [];
  private inFlight = false;
  private scheduled = false;
  private readonly outputName: string;
  readonly stats: UnetBatcherStats = { runs: 0, calls: 0, maxMerged: 0 };

  /**
   * @param unet the UNet session
   * @param timestepPerRow whether the graph's `timestep` input has one value per batch row
   * @param maxRows most text rows in one merged run (a single call larger than this still runs, alone)
   * @param onRun observes each run: how many calls and text rows went into it
   * @param sharedLatents whether the graph takes each latent once for its k = r * m text rows (else m = k)
   */
  constructor(
    private readonly unet: Pick<OnnxModel, 'run' | 'outputNames'>,
    private readonly timestepPerRow: boolean,
    private readonly maxRows = 16,
    private readonly onRun?: (calls: number, rows: number) => void,
    private readonly sharedLatents = false,
  ) {
    if (!Number.isInteger(maxRows) || maxRows < 1) {
      throw new PictalkError('config.invalid', `Expected the UNet batch limit to be a positive integer, got ${String(maxRows)}`);
    }
    this.outputName = unet.outputNames[0]!;
  }

  /** Run one UNet call, merged with others that wait at the same moment; resolves once `call.out` is filled. */
  run(call: UnetCall): Promise<void> {
    const [latents, c, h, w] = call.sampleDims;
    const [rows, l, d] = call.contextDims;
    const fits = this.sharedLatents ? latents > 0 && rows % latents === 0 : latents === rows;
    if (!fits || call.sample.length !== latents * c * h * w || call.out.length !== rows * c * h * w || call.context.length !== rows * l * d) {
      return Promise.reject(new PictalkError('inference.failed',
        `Expected a UNet call of [${call.sampleDims.join(', ')}] with context [${call.contextDims.join(', ')}]${this.sharedLatents ? ' (text rows a multiple of the latents)' : ' (a latent per text row)'}, got buffers of ${call.sample.length}, ${call.context.length} and ${call.out.length} values`));
    }
    const expectedSteps = this.timestepPerRow ? latents : 1;
    if (call.timestep.length !== expectedSteps) {
      return Promise.reject(new PictalkError('inference.failed', `Expected ${expectedSteps} timestep value(s), got ${call.timestep.length}`));
    }
    const stepKey = this.timestepPerRow ? '' : `|t${String(call.timestep[0])}`;
    const key = `${c}x${h}x${w}|${l}x${d}|${rows / latents}|${call.timestep.constructor.name}${stepKey}`;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ call, key, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled) return;
    this.scheduled = true;
    // after the current turn: every job that reaches its UNet call in this turn joins the same run
    setImmediate(() => { this.scheduled = false; void this.flush(); });
  }

  /** Take the oldest waiting call and every later one that fits with it (same key, within maxRows). */
  private take(): Pending[] {
    const first = this.pending[0]!;
    const group = [first];
    let rows = first.call.contextDims[0];
    for (const other of this.pending.slice(1)) {
      if (other.key !== first.key || rows + other.call.contextDims[0] > this.maxRows) continue;
      group.push(other);
      rows += other.call.contextDims[0];
    }
    for (const taken of group) this.pending.splice(this.pending.indexOf(taken), 1);
    return group;
  }

  private async flush(): Promise<void> {
    if (this.inFlight || this.pending.length === 0) return;
    this.inFlight = true;
    const group = this.take();
    try {
      await this.runGroup(group);
      for (const p of group) p.resolve();
    } catch (error) {
      for (const p of group) p.reject(error);
    } finally {
      this.inFlight = false;
      this.stats.runs += 1;
      this.stats.calls += group.length;
      this.stats.maxMerged = Math.max(this.stats.maxMerged, group.length);
      // whatever arrived during the run goes next, at once
      if (this.pending.length > 0) void this.flush();
    }
  }

  private async runGroup(group: Pending[]): Promise<void> {
    const first = group[0]!.call;
    const [, c, h, w] = first.sampleDims;
    const [, l, d] = first.contextDims;
    const repeat = first.contextDims[0] / first.sampleDims[0];      // the same for every call of the group (its key)
    const latents = group.reduce((n, p) => n + p.call.sampleDims[0], 0);
    const rows = latents * repeat;
    this.onRun?.(group.length, rows);
    if (group.length === 1) {
      await this.unet.run({
        sample: { data: first.sample, dims: [...first.sampleDims] },
        timestep: { data: first.timestep, dims: [first.timestep.length] },
        encoder_hidden_states: { data: first.context, dims: [...first.contextDims] },
      }, { [this.outputName]: { data: first.out, dims: [rows, c, h, w] } });
      return;
    }
    const perRow = c * h * w;
    const perText = l * d;
    const sample = new Float32Array(latents * perRow);
    const context = new Float32Array(rows * perText);
    const timestep = first.timestep instanceof BigInt64Array ? new BigInt64Array(this.timestepPerRow ? latents : 1) : new Float32Array(this.timestepPerRow ? latents : 1);
    // the latents one call after the other; the text rows in `repeat` blocks, block b holding each call's b-th block
    let offset = 0;
    for (const { call } of group) {
      const m = call.sampleDims[0];
      sample.set(call.sample, offset * perRow);
      for (let b = 0; b < repeat; b += 1) {
        context.set(call.context.subarray(b * m * perText, (b + 1) * m * perText), (b * latents + offset) * perText);
      }
      // latents of one call share its timestep buffer's element type (the key says so)
      copyInto(timestep, call.timestep.subarray(0, this.timestepPerRow ? m : 1), this.timestepPerRow ? offset : 0);
      offset += m;
    }
    const out: TensorValue<Float32Array> = { data: new Float32Array(rows * perRow), dims: [rows, c, h, w] };
    await this.unet.run({
      sample: { data: sample, dims: [latents, c, h, w] },
      timestep: { data: timestep, dims: [timestep.length] },
      encoder_hidden_states: { data: context, dims: [rows, l, d] },
    }, { [this.outputName]: out });
    offset = 0;
    for (const { call } of group) {
      const m = call.sampleDims[0];
      for (let b = 0; b < repeat; b += 1) {
        call.out.set(out.data.subarray((b * latents + offset) * perRow, (b * latents + offset + m) * perRow), b * m * perRow);
      }
      offset += m;
    }
  }
}

function copyInto<T extends BigInt64Array | Float32Array>(target: T, source: BigInt64Array | Float32Array, offset: number): void {
  (target as { set(values: ArrayLike<number | bigint>, offset: number): void }).set(source, offset);
}
