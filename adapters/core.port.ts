/**
 * The in-process InferenceCore as bot/'s InferencePort: the embedded default (`--role all` without Redis). The core
 * answers at once; the port is asynchronous because a queue in another process cannot (the cluster's).
 */
import type { InferencePort, JobHandle, QueueStats, SubmitOptions } from '../bot/ports.js';
import type { InferenceCore } from '../inference/core.js';
import type { JobInput, JobOwner } from '../inference/types.js';

export function corePort(core: InferenceCore): InferencePort {
  return {
    async submit(owner: JobOwner, input: JobInput, options: SubmitOptions = {}): Promise<JobHandle> {
      const handle = core.submit(owner, input, options);
      return {
        id: handle.id,
        position: async () => handle.position(),
        on: handle.on.bind(handle) as JobHandle['on'],
        result: handle.result,
        cancel: async () => handle.cancel(),
      };
    },
    async cancel(jobId: string): Promise<boolean> {
      return core.cancelById(jobId);
    },
    async stats(): Promise<QueueStats> {
      const { queued, running } = core.stats();
      return { queued, running };
    },
  };
}
