/**
 * Runs one `SlotPerChangefeed` in a process of its own, so a benchmark can sample its RSS alone:
 *
 *   node --import tsx bench/slot-per-changefeed-process.ts '<ChangefeedInput as JSON>'
 *
 * Prints JSON lines on stdout: `{"event":"streaming"}` once, then every `PROGRESS_MS`
 * `{"event":"progress","rowsReceived":N,"checkpoint":"X/Y"|null}`, and a last progress line on
 * exit. SIGTERM / SIGINT stop it gracefully (exit 0); a pipeline error exits 1 with the error on
 * stderr. A heap exhaustion kills it (V8 aborts): the parent reads the last progress line.
 */
import { defineChangefeed, type ChangefeedInput } from '../src/runtime/changefeed-config.ts';
import { SlotPerChangefeed } from './slot-per-changefeed.ts';

const PROGRESS_MS = 500;

const input = JSON.parse(process.argv[2] ?? 'null') as ChangefeedInput | null;
if (!input) {
  console.error('usage: slot-per-changefeed-process.ts <changefeed config JSON>');
  process.exit(2);
}
const pipeline = SlotPerChangefeed.start(defineChangefeed(input));
const emit = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
const progress = () =>
  emit('progress', {
    rowsReceived: pipeline.rowsReceived,
    checkpoint: pipeline.checkpoint?.toString() ?? null,
  });
const timer = setInterval(progress, PROGRESS_MS);
const onSignal = () => void pipeline.stop();
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
pipeline.streaming.then(
  () => emit('streaming'),
  () => {},
);
try {
  await pipeline.done;
  process.exitCode = 0;
} catch (err) {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
} finally {
  clearInterval(timer);
  progress();
}
