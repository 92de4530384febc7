import { startNats } from '/work/main/test/support/nats.ts';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
const nats = await startNats({ port: 4332 });
try {
  const nc = await connect({ servers: '127.0.0.1:4332', user: nats.user, pass: nats.password });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'raw', subjects: ['raw.>'], duplicate_window: 600e9 });
  const js = jetstream(nc);
  for (const mode of ['noid', 'id']) {
    const n = 30000; const t0 = performance.now(); let p: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) { p.push(js.publish('raw.x', `{"i":${i}}`, mode === 'id' ? { msgID: `${mode}-${i}` } : {})); if (p.length >= 8000) { await Promise.all(p); p = []; } }
    await Promise.all(p);
    const s = (performance.now() - t0) / 1000; console.log(mode, Math.round(n / s), 'msg/s');
  }
  // core publish + flush as a baseline
  { const n = 30000; const t0 = performance.now(); for (let i = 0; i < n; i++) nc.publish('raw.y', `{"i":${i}}`); await nc.flush(); console.log('core', Math.round(n / ((performance.now() - t0) / 1000))); }
  await nc.close();
} finally { await nats.stop(); }
