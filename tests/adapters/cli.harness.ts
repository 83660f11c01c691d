/** The command line in process: `main` with its output captured, as the CLI tests run it. */
import { main, type CliIo } from '../../adapters/cli.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pictalk <argv>` with an empty environment (or `env`) in the repository root (or `cwd`). */
export async function cli(argv: string[], env: NodeJS.ProcessEnv = {}, cwd = process.cwd()): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; }, env, cwd };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}
