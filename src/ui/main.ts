/**
 * The dashboard: every changefeed with state and lag, and for the selected one its positions,
 * last error, pause/resume and lag/throughput charts from the server's sample ring. Polls the
 * API once a second; no framework, charts are inline SVG (chart.ts).
 */
import './style.css';
import { api, setToken, Unauthorized, type Feed, type Sample } from './api.ts';
import { lineChart } from './chart.ts';
import { bytes, count, duration } from './format.ts';

const POLL_MS = 1000;
let selected: string | null = null;
let busy = false;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

const $ = (id: string) => document.getElementById(id)!;

function renderList(feeds: Feed[]): void {
  const body = document.querySelector('#feeds tbody')!;
  $('empty').hidden = feeds.length > 0;
  body.replaceChildren(
    ...feeds.map((f) => {
      const running = f.state === 'running';
      const tr = el(
        'tr',
        { 'data-feed-id': f.id, 'data-state': f.state, class: f.id === selected ? 'selected' : '' },
        el('td', {}, f.id),
        el('td', {}, el('span', { class: `badge ${f.state}` }, f.state)),
        el('td', {}, f.status.phase),
        el('td', { class: 'num' }, running ? duration(f.status.lagMs) : '–'),
        el('td', { class: 'num' }, running ? bytes(f.status.lagBytes) : '–'),
        el('td', { class: 'num' }, count(f.status.rowsPerSec)),
        el('td', { class: 'mono' }, f.status.checkpoint ?? '–'),
      );
      tr.addEventListener('click', () => {
        selected = f.id;
        void refresh();
      });
      return tr;
    }),
  );
}

function renderDetail(f: Feed | undefined, samples: Sample[]): void {
  const box = $('detail');
  if (!f) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const action = f.state === 'running' ? 'pause' : 'resume';
  const button = el(
    'button',
    { 'data-action': action, type: 'button' },
    action === 'pause' ? 'Pause' : 'Resume',
  );
  button.addEventListener('click', () => void act(f.id, action));
  const kv = (k: string, v: string) => [el('dt', {}, k), el('dd', { class: 'mono' }, v)];
  const positions = el(
    'dl',
    {},
    ...kv('source', f.config?.source ?? '–'),
    ...kv('sink', f.config?.sink ?? '–'),
    ...kv('tables', f.config?.tables.join(', ') ?? '–'),
    ...kv('epoch', String(f.status.epoch)),
    ...kv('resolved', f.status.resolved ?? '–'),
    ...kv('checkpoint', f.status.checkpoint ?? '–'),
    ...kv('retained WAL', bytes(f.retainedWalBytes)),
  );
  const error = f.lastError
    ? el(
        'div',
        { class: 'error', 'data-error': f.lastError.code },
        el('strong', {}, f.lastError.message),
        el('p', {}, `hint: ${f.lastError.hint}`),
      )
    : '';
  box.replaceChildren(
    el('h2', {}, f.id, ' ', el('span', { class: `badge ${f.state}` }, f.state), ' ', button),
    error,
    el(
      'div',
      { class: 'charts' },
      lineChart(
        samples.map((s) => ({ tMs: s.tMs, v: s.lagMs })),
        { title: 'Lag (checkpoint behind source)', format: duration },
      ),
      lineChart(
        samples.map((s) => ({ tMs: s.tMs, v: s.rowsPerSec })),
        { title: 'Throughput (rows/s)', format: count },
      ),
    ),
    positions,
  );
}

async function act(id: string, action: 'pause' | 'resume'): Promise<void> {
  busy = true;
  try {
    await api('POST', `/api/v1/changefeeds/${encodeURIComponent(id)}/${action}`);
  } catch (err) {
    if (err instanceof Unauthorized) $('token').hidden = false;
    $('connection').textContent =
      err instanceof Unauthorized
        ? `${action} needs the API token (run \`tidemark dashboard\` for a signed-in link)`
        : `${action} failed: ${(err as Error).message}`;
  } finally {
    busy = false;
  }
  await refresh();
}

async function refresh(): Promise<void> {
  try {
    const { changefeeds } = await api<{ changefeeds: Feed[] }>('GET', '/api/v1/changefeeds');
    if (!changefeeds.some((f) => f.id === selected)) selected = changefeeds[0]?.id ?? null;
    const current = changefeeds.find((f) => f.id === selected);
    const samples = current
      ? (
          await api<{ samples: Sample[] }>(
            'GET',
            `/api/v1/changefeeds/${encodeURIComponent(current.id)}/samples?sinceMs=${Date.now() - 5 * 60_000}`,
          )
        ).samples
      : [];
    $('connection').textContent = `updated ${new Date().toLocaleTimeString()}`;
    renderList(changefeeds);
    renderDetail(current, samples);
  } catch (err) {
    if (err instanceof Unauthorized) {
      $('token').hidden = false;
      $('connection').textContent = 'this server needs an API token';
    } else {
      $('connection').textContent = `server unreachable: ${(err as Error).message}`;
    }
  }
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  setToken((document.getElementById('token-input') as HTMLInputElement).value.trim());
  $('token').hidden = true;
  void refresh();
});

void refresh();
setInterval(() => {
  if (!busy) void refresh();
}, POLL_MS);
