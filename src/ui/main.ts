/**
 * The dashboard: every changefeed with state, lag and warnings; for the selected one its last
 * error with hint and time, its warnings, lag and throughput over ten minutes, what is yet to be
 * read, retained WAL, positions, tables and views;
 * create, edit, pause, resume and remove, with the API's validation and preflight shown inline.
 * Polls the API once a second; no framework, charts are inline SVG (chart.ts).
 */
import './style.css';
import { api, ApiFailure, setToken, Unauthorized, type Feed, type Sample } from './api.ts';
import { lineChart } from './chart.ts';
import { editorForm, type EditorMode } from './editor.ts';
import { bytes, count, duration } from './format.ts';

const POLL_MS = 1000;
const WINDOW_MS = 10 * 60_000;
let selected: string | null = null;
let busy = false;
let feeds: Feed[] = [];

export function el<K extends keyof HTMLElementTagNameMap>(
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

function renderList(list: Feed[]): void {
  const body = document.querySelector('#feeds tbody')!;
  $('empty').hidden = list.length > 0;
  $('feeds').hidden = list.length === 0;
  body.replaceChildren(
    ...list.map((f) => {
      const running = f.state === 'running';
      const cell = (label: string, text: string, cls = '') =>
        el('td', { 'data-label': label, ...(cls ? { class: cls } : {}) }, text);
      const tr = el(
        'tr',
        { 'data-feed-id': f.id, 'data-state': f.state, class: f.id === selected ? 'selected' : '' },
        el(
          'td',
          { 'data-label': 'Changefeed', class: 'id' },
          f.id,
          ...(f.status.warnings.length > 0
            ? [
                ' ',
                el(
                  'span',
                  { class: 'badge warn', title: f.status.warnings.join('\n') },
                  `${f.status.warnings.length} warning${f.status.warnings.length === 1 ? '' : 's'}`,
                ),
              ]
            : []),
        ),
        el('td', { 'data-label': 'State' }, el('span', { class: `badge ${f.state}` }, f.state)),
        cell('Phase', f.status.phase),
        cell('Lag', running ? duration(f.status.lagMs) : '–', 'num'),
        cell('Lag bytes', running ? bytes(f.status.lagBytes) : '–', 'num'),
        cell('Rows/s', count(f.status.rowsPerSec), 'num'),
        cell('Checkpoint', f.status.checkpoint ?? '–', 'mono'),
      );
      tr.addEventListener('click', () => {
        selected = f.id;
        void refresh();
      });
      return tr;
    }),
  );
}

function button(action: string, text: string, onClick: () => void, cls = ''): HTMLButtonElement {
  const b = el('button', { 'data-action': action, type: 'button', ...(cls ? { class: cls } : {}) }, text);
  b.addEventListener('click', onClick);
  return b;
}

/** The view's plan in words, as the changefeed planned it (nothing before it did). */
function planOf(f: Feed, view: string): Node | string {
  const plan = f.status.views?.find((p) => p.name === view)?.plan;
  if (!plan) return '';
  return el(
    'details',
    { class: 'plan', open: '' },
    el('summary', {}, 'Plan'),
    el('ol', {}, ...plan.map((line) => el('li', {}, line))),
  );
}

function renderDetail(f: Feed | undefined, samples: Sample[]): void {
  const box = $('detail');
  if (!f) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const running = f.state === 'running';
  const actions = el(
    'div',
    { class: 'actions' },
    running
      ? button('pause', 'Pause', () => void act(f.id, 'pause'))
      : button('resume', f.state === 'failed' ? 'Resume (retry)' : 'Resume', () => void act(f.id, 'resume')),
    button('edit', 'Edit', () => openEditor({ kind: 'edit', feed: f })),
    button('remove', 'Remove', () => void remove(f.id), 'danger'),
  );
  const kv = (k: string, v: string) => [el('dt', {}, k), el('dd', { class: 'mono' }, v)];
  const budget = f.config ? duration(f.config.lagBudgetMs) : '–';
  const facts = el(
    'dl',
    {},
    ...kv('source', f.config?.source ?? '–'),
    ...kv('sink', f.config?.sink ?? '–'),
    ...kv('phase', f.status.phase),
    ...kv('epoch', String(f.status.epoch)),
    ...kv('resolved', f.status.resolved ?? '–'),
    ...kv('checkpoint', f.status.checkpoint ?? '–'),
    ...kv(
      'lag',
      `${running ? duration(f.status.lagMs) : '–'} (budget ${budget}${f.withinLagBudget === false ? ', over' : ''})`,
    ),
    ...kv('to read', running ? bytes(f.status.resolvedLagBytes) : '–'),
    ...kv('retained WAL', bytes(f.retainedWalBytes)),
  );
  const warnings =
    f.status.warnings.length > 0
      ? el(
          'div',
          { class: 'warnings', 'data-part': 'warnings' },
          el('strong', {}, 'Warnings'),
          el('ul', {}, ...f.status.warnings.map((w) => el('li', {}, w))),
        )
      : '';
  const error = f.lastError
    ? el(
        'div',
        { class: 'error', 'data-error': f.lastError.code },
        el('strong', {}, f.lastError.message),
        el('p', {}, `hint: ${f.lastError.hint}`),
        el('p', { class: 'muted' }, f.lastError.at ? `at ${new Date(f.lastError.at).toLocaleString()}` : ''),
      )
    : '';
  const phase = f.state === 'running' ? f.status.phase : f.state;
  const tables = el(
    'table',
    { class: 'sub', 'data-part': 'tables' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', {}, f.status.tables ? 'Table or view' : 'Table or pattern'),
        el('th', {}, 'Phase'),
        el('th', {}, 'Rows copied by the snapshot'),
      ),
    ),
    el(
      'tbody',
      {},
      // Once the changefeed resolved its patterns, the tables themselves; before, what was asked.
      ...(
        f.status.tables ??
        (f.config?.tables ?? []).map((name) => ({ name, rows: null as number | null, phase: undefined }))
      ).map((t) =>
        el(
          'tr',
          { 'data-table': t.name, ...(t.phase ? { 'data-phase': t.phase } : {}) },
          el('td', { class: 'mono' }, t.name),
          el('td', {}, t.phase === 'copying' ? 'copying' : phase),
          el('td', { class: 'num' }, t.rows === null ? '–' : copyProgress(t)),
        ),
      ),
    ),
  );
  const views = (f.config?.views ?? []).map((v) =>
    el(
      'div',
      { class: 'view', 'data-view': v.name },
      el('h4', {}, v.name, ' ', el('span', { class: 'muted' }, `· ${phase}`)),
      el('pre', {}, v.sql),
      planOf(f, v.name),
    ),
  );
  box.replaceChildren(
    el('h2', {}, f.id, ' ', el('span', { class: `badge ${f.state}` }, f.state)),
    actions,
    error,
    warnings,
    el(
      'div',
      { class: 'charts' },
      lineChart(
        samples.map((s) => ({ tMs: s.tMs, v: s.lagMs })),
        { title: 'Lag (checkpoint behind source), last 10 min', format: duration },
      ),
      lineChart(
        samples.map((s) => ({ tMs: s.tMs, v: s.rowsPerSec })),
        { title: 'Throughput (rows/s), last 10 min', format: count },
      ),
    ),
    facts,
    el('h3', {}, 'Tables'),
    tables,
    el('h3', {}, 'Views'),
    ...(views.length > 0 ? views : [el('p', { class: 'muted' }, 'No views.')]),
  );
}

function say(text: string): void {
  $('connection').textContent = text;
}

function needToken(action: string): void {
  $('token').hidden = false;
  say(`${action} needs the API token (run \`tidemark dashboard\` for a signed-in link)`);
}

async function act(id: string, action: 'pause' | 'resume'): Promise<void> {
  busy = true;
  try {
    await api('POST', `/api/v1/changefeeds/${encodeURIComponent(id)}/${action}`);
  } catch (err) {
    if (err instanceof Unauthorized) needToken(action);
    else say(`${action} failed: ${(err as Error).message}`);
  } finally {
    busy = false;
  }
  await refresh();
}

async function remove(id: string): Promise<void> {
  if (
    !confirm(
      `Remove changefeed ${id}? Its data downstream stays; its position stops holding the source's WAL.`,
    )
  )
    return;
  busy = true;
  try {
    await api('DELETE', `/api/v1/changefeeds/${encodeURIComponent(id)}`);
    if (selected === id) selected = null;
  } catch (err) {
    if (err instanceof Unauthorized) needToken('remove');
    else say(`remove failed: ${(err as Error).message}`);
  } finally {
    busy = false;
  }
  await refresh();
}

function openEditor(mode: EditorMode): void {
  const box = $('editor');
  box.hidden = false;
  box.replaceChildren(
    editorForm(mode, {
      onDone: (id) => {
        box.hidden = true;
        selected = id;
        void refresh();
      },
      onCancel: () => {
        box.hidden = true;
      },
      onUnauthorized: () => needToken(mode.kind === 'create' ? 'creating' : 'editing'),
    }),
  );
  box.scrollIntoView({ block: 'nearest' });
}

async function refresh(): Promise<void> {
  try {
    const { changefeeds } = await api<{ changefeeds: Feed[] }>('GET', '/api/v1/changefeeds');
    feeds = changefeeds;
    if (!feeds.some((f) => f.id === selected)) selected = feeds[0]?.id ?? null;
    const current = feeds.find((f) => f.id === selected);
    const samples = current
      ? (
          await api<{ samples: Sample[] }>(
            'GET',
            `/api/v1/changefeeds/${encodeURIComponent(current.id)}/samples?sinceMs=${Date.now() - WINDOW_MS}`,
          )
        ).samples
      : [];
    say(`updated ${new Date().toLocaleTimeString()}`);
    renderList(feeds);
    renderDetail(current, samples);
  } catch (err) {
    if (err instanceof Unauthorized) {
      $('token').hidden = false;
      say('this server needs an API token');
    } else if (err instanceof ApiFailure) {
      say(err.message);
    } else {
      say(`server unreachable: ${(err as Error).message}`);
    }
  }
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  setToken((document.getElementById('token-input') as HTMLInputElement).value.trim());
  $('token').hidden = true;
  void refresh();
});
$('new-feed').addEventListener('click', () => openEditor({ kind: 'create' }));

void refresh();
setInterval(() => {
  if (!busy) void refresh();
}, POLL_MS);

/** Rows copied, and for an online copy its percent and time left. */
function copyProgress(t: {
  rows: number | null;
  phase?: string | undefined;
  percent?: number | null | undefined;
  etaSeconds?: number | null | undefined;
}): string {
  const rows = count(t.rows ?? 0);
  if (t.phase !== 'copying') return rows;
  const pct = t.percent == null ? '' : ` · ${t.percent.toFixed(1)}%`;
  const eta = t.etaSeconds == null ? '' : ` · ${duration(t.etaSeconds * 1000)} left`;
  return `${rows}${pct}${eta}`;
}
