import type { BenchOptions, BenchResult } from './report.ts';

export async function run(options: BenchOptions): Promise<BenchResult> {
  options.log('sinks: not written yet');
  return { name: 'sinks', figures: [], notes: [] };
}
