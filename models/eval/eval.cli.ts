/**
 * Evaluate the shipped ONNX models on a fresh held-out draw of the builtin world.
 *
 *   npm run build && npm run eval -- --json [--seed S] [--count N]
 *   npx tsx models/eval/eval.cli.ts --t2i DIR --captioner DIR --recognizer DIR --count 20 --t2i-count 4
 *
 * Prints one JSON object with --json (metrics flat at the top, plus counts, settings, models and timings),
 * a table otherwise. What each number means: models/EVAL.md.
 */
import { pathToFileURL } from 'node:url';
import { isPictalkError } from '../../common/errors.js';
import { parseEvalArgs, USAGE, type EvalOptions } from './eval.options.js';
import { formatReport } from './eval.report.js';
import { runEval } from './eval.run.js';

export async function main(argv: readonly string[]): Promise<number> {
  let options: EvalOptions | 'help';
  try {
    options = parseEvalArgs(argv);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const report = await runEval(options, (line) => process.stderr.write(`${line}\n`));
    // metrics flat at the top level, so `jq .caption_bleu4` works
    const { metrics, ...rest } = report;
    process.stdout.write(options.json ? `${JSON.stringify({ ...metrics, ...rest })}\n` : formatReport(report));
    return 0;
  } catch (error) {
    // pictalk's own errors (a missing model folder, a bad setting) are the user's to fix: a message, not a stack
    if (!isPictalkError(error)) throw error;
    process.stderr.write(`eval: ${error.message}\n`);
    return 2;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
