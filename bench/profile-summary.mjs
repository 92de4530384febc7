// node bench/profile-summary.mjs FILE.cpuprofile [N]: self time by function and by file, top N.
// A FILE.heapprofile (bench/views.ts TM_HEAP_PROF): bytes allocated by function, and by
// function with its caller, top N.
/* global process, console */
import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const top = Number(process.argv[3] ?? 30);
const frame = (cf) =>
  `${cf.functionName || '(anon)'} ${cf.url.replace(/^.*\/(src|node_modules|bench)\//, '$1/')}:${cf.lineNumber + 1}`;
if (p.head !== undefined) {
  const fn = new Map();
  const pair = new Map();
  let total = 0;
  const walk = (node, caller) => {
    const k = frame(node.callFrame);
    fn.set(k, (fn.get(k) ?? 0) + node.selfSize);
    const kc = `${k}  <  ${caller}`;
    pair.set(kc, (pair.get(kc) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const c of node.children) walk(c, k);
  };
  walk(p.head, '');
  for (const [m, title] of [
    [fn, 'bytes allocated by function'],
    [pair, 'bytes allocated by function < caller'],
  ]) {
    console.log(`\n${title} (total ${(total / 2 ** 20).toFixed(0)} MiB)`);
    for (const [k, b] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(
        `${((100 * b) / total).toFixed(1).padStart(5)}%  ${(b / 2 ** 20).toFixed(1).padStart(7)} MiB  ${k}`,
      );
  }
  process.exit(0);
}
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas;
for (let i = 0; i < p.samples.length; i++)
  self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (dt[i] ?? 0));
const fn = new Map();
const file = new Map();
let total = 0;
for (const [id, us] of self) {
  const cf = byId.get(id).callFrame;
  const short = cf.url.replace(/^.*\/(src|node_modules|bench)\//, '$1/');
  const k = `${cf.functionName || '(anon)'} ${short}:${cf.lineNumber + 1}`;
  fn.set(k, (fn.get(k) ?? 0) + us);
  const f = short === '' ? `(${cf.functionName})` : short.replace(/^(node_modules\/[^/]+).*$/, '$1');
  file.set(f, (file.get(f) ?? 0) + us);
  total += us;
}
const show = (m, title) => {
  console.log(`\n${title} (total ${(total / 1e3).toFixed(0)} ms)`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(
      `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1e3).toFixed(0).padStart(6)} ms  ${k}`,
    );
};
show(file, 'self time by file');
show(fn, 'self time by function');
