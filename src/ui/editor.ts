/**
 * The create/edit form of a changefeed. Submits the definition (create: POST, runs the server's
 * preflight; edit: PATCH of the changed keys), and shows what the server answers where it
 * belongs: a validation problem under its field (the API names each key path), failed preflight
 * checks with their fixes above the buttons. "Check" runs the preflight alone.
 */
import { api, ApiFailure, Unauthorized, type Feed, type PreflightCheck } from './api.ts';

export type EditorMode = { kind: 'create' } | { kind: 'edit'; feed: Feed };

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

const FIELDS = ['id', 'source', 'sink', 'tables', 'views', 'epoch', 'lagBudgetMs'] as const;

export function editorForm(
  mode: EditorMode,
  on: { onDone: (id: string) => void; onCancel: () => void; onUnauthorized: () => void },
): HTMLFormElement {
  const cfg = mode.kind === 'edit' ? mode.feed.config : null;
  const field = (name: string, label: string, input: HTMLElement, help = '') =>
    el(
      'div',
      { class: 'field', 'data-field': name },
      el('label', {}, label, input),
      help ? el('small', { class: 'muted' }, help) : '',
      el('p', { class: 'problem', role: 'alert' }),
    );
  const input = (name: string, value: string, attrs: Record<string, string> = {}) =>
    el('input', { name, value, autocomplete: 'off', spellcheck: 'false', ...attrs });
  const id = input(
    'id',
    mode.kind === 'edit' ? mode.feed.id : '',
    mode.kind === 'edit' ? { readonly: '' } : {},
  );
  const source = input('source', cfg?.source ?? '', {
    placeholder: 'postgres://user:password@host:5432/db?sslmode=verify-full',
  });
  const sink = input('sink', cfg?.sink ?? '', { placeholder: 'postgres://user:password@host:5432/replica' });
  const tables = el('textarea', { name: 'tables', rows: '2', placeholder: 'public.orders, sales.*' });
  tables.value = (cfg?.tables ?? []).join(', ');
  const views = el('textarea', {
    name: 'views',
    rows: '4',
    placeholder: 'name: SELECT … (one view per block, blank line between)',
  });
  views.value = (cfg?.views ?? []).map((v) => `${v.name}: ${v.sql}`).join('\n\n');
  const interval = input('epoch', String(cfg?.epoch.intervalMs ?? 50), { inputmode: 'numeric' });
  const budget = input('lagBudgetMs', String(cfg?.lagBudgetMs ?? 60000), { inputmode: 'numeric' });
  const report = el('div', { class: 'report' });
  const form = el(
    'form',
    { class: 'editor', 'data-mode': mode.kind, novalidate: '' },
    el('h2', {}, mode.kind === 'create' ? 'New changefeed' : `Edit ${mode.feed.id}`),
    field('id', 'Id', id, 'a-z, 0-9, _ and -; names its checkpoint'),
    field(
      'source',
      'Source',
      source,
      mode.kind === 'edit' ? 'The password shows masked; leave it to keep it.' : '',
    ),
    field('sink', 'Sink', sink),
    field('tables', 'Tables', tables, 'schema.table or patterns, separated by commas'),
    field('views', 'Views', views, 'name: SELECT …, committed with the tables'),
    field('epoch', 'Epoch interval (ms)', interval),
    field('lagBudgetMs', 'Lag budget (ms)', budget, 'beyond it the changefeed is not ready'),
    report,
    el(
      'div',
      { class: 'actions' },
      el('button', { type: 'submit', 'data-action': 'save' }, mode.kind === 'create' ? 'Create' : 'Save'),
      el('button', { type: 'button', 'data-action': 'check' }, 'Check'),
      el('button', { type: 'button', 'data-action': 'cancel' }, 'Cancel'),
    ),
  );

  const definition = (): Record<string, unknown> => ({
    id: id.value.trim(),
    source: source.value.trim(),
    sink: sink.value.trim(),
    tables: tables.value
      .split(/[,\n]/)
      .map((t) => t.trim())
      .filter((t) => t !== ''),
    views: views.value
      .split(/\n\s*\n/)
      .map((b) => b.trim())
      .filter((b) => b !== '')
      .map((b) => {
        const i = b.indexOf(':');
        return { name: b.slice(0, i < 0 ? b.length : i).trim(), sql: i < 0 ? '' : b.slice(i + 1).trim() };
      }),
    epoch: { intervalMs: Number(interval.value) },
    lagBudgetMs: Number(budget.value),
  });

  const clear = () => {
    for (const p of form.querySelectorAll('.problem')) p.textContent = '';
    report.replaceChildren();
  };
  const showChecks = (checks: PreflightCheck[], title: string) => {
    report.replaceChildren(
      el('strong', {}, title),
      el(
        'ul',
        {},
        ...checks.map((c) =>
          el(
            'li',
            { class: c.status, 'data-check': c.id },
            `${c.status === 'ok' ? '✓' : c.status === 'warn' ? '!' : '✗'} ${c.id}: ${c.detail}`,
            c.fix && c.status !== 'ok' ? el('div', { class: 'fix' }, `fix: ${c.fix}`) : '',
          ),
        ),
      ),
    );
  };
  const showFailure = (err: unknown) => {
    if (err instanceof Unauthorized) return on.onUnauthorized();
    if (!(err instanceof ApiFailure)) {
      report.textContent = (err as Error).message;
      return;
    }
    const e = err.error;
    if (e.code === 'PREFLIGHT_FAILED') {
      const checks = (e.detail ?? '').split('\n').map((line): PreflightCheck => {
        const m = /^([\w.]+): (.*?)(?: — fix: (.*))?$/.exec(line);
        return { id: m?.[1] ?? '', status: 'fail', detail: m?.[2] ?? line, ...(m?.[3] ? { fix: m[3] } : {}) };
      });
      showChecks(
        checks,
        'Not safe to start: fix each problem below (`tidemark doctor` shows the same report).',
      );
      return;
    }
    const general: string[] = [];
    for (const line of (e.detail ?? e.message).split('\n')) {
      const path = /^([\w]+)[.[:]/.exec(line)?.[1] ?? '';
      const box = (FIELDS as readonly string[]).includes(path)
        ? form.querySelector<HTMLElement>(`[data-field="${path}"] .problem`)
        : null;
      if (box) box.textContent = [box.textContent, line].filter((x) => x).join('\n');
      else general.push(line);
    }
    if (general.length > 0) report.append(el('p', { class: 'problem' }, general.join('\n')));
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clear();
    const body = definition();
    const request =
      mode.kind === 'create'
        ? api<Feed>('POST', '/api/v1/changefeeds', body)
        : api<Feed>('PATCH', `/api/v1/changefeeds/${encodeURIComponent(mode.feed.id)}`, {
            ...body,
            id: undefined,
          });
    request.then((f) => on.onDone(f.id), showFailure);
  });
  form.querySelector('[data-action="check"]')?.addEventListener('click', () => {
    clear();
    report.textContent = 'checking…';
    api<{ ok: boolean; checks: PreflightCheck[] }>('POST', '/api/v1/preflight', definition()).then(
      (r) => showChecks(r.checks, r.ok ? 'Safe to start.' : 'Not safe to start:'),
      showFailure,
    );
  });
  form.querySelector('[data-action="cancel"]')?.addEventListener('click', () => on.onCancel());
  return form;
}
