/** Small line charts drawn as inline SVG: one series, time on x, value on y from 0. */
const NS = 'http://www.w3.org/2000/svg';

export interface ChartOptions {
  title: string;
  /** Formats a y value for the axis label. */
  format: (v: number) => string;
  width?: number;
  height?: number;
}

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export function lineChart(
  points: readonly { tMs: number; v: number | null }[],
  opts: ChartOptions,
): SVGElement {
  const w = opts.width ?? 460;
  const h = opts.height ?? 140;
  const pad = { left: 56, right: 8, top: 20, bottom: 18 };
  const root = svg('svg', {
    viewBox: `0 0 ${w} ${h}`,
    width: w,
    height: h,
    class: 'chart',
    role: 'img',
    'aria-label': opts.title,
  });
  root.append(svg('text', { x: pad.left, y: 13, class: 'chart-title' }, opts.title));
  const known = points.filter((p): p is { tMs: number; v: number } => p.v !== null);
  const maxV = Math.max(1, ...known.map((p) => p.v));
  const t0 = points[0]?.tMs ?? 0;
  const t1 = Math.max(t0 + 1, points[points.length - 1]?.tMs ?? 1);
  const x = (t: number) => pad.left + ((t - t0) / (t1 - t0)) * (w - pad.left - pad.right);
  const y = (v: number) => h - pad.bottom - (v / maxV) * (h - pad.top - pad.bottom);
  root.append(svg('line', { x1: pad.left, y1: y(0), x2: w - pad.right, y2: y(0), class: 'axis' }));
  root.append(svg('line', { x1: pad.left, y1: y(maxV), x2: w - pad.right, y2: y(maxV), class: 'grid' }));
  root.append(
    svg('text', { x: pad.left - 4, y: y(maxV) + 4, class: 'tick', 'text-anchor': 'end' }, opts.format(maxV)),
  );
  root.append(
    svg('text', { x: pad.left - 4, y: y(0) + 4, class: 'tick', 'text-anchor': 'end' }, opts.format(0)),
  );
  const spanS = Math.round((t1 - t0) / 1000);
  root.append(svg('text', { x: pad.left, y: h - 4, class: 'tick' }, `−${spanS} s`));
  root.append(svg('text', { x: w - pad.right, y: h - 4, class: 'tick', 'text-anchor': 'end' }, 'now'));
  if (known.length > 1) {
    const d = known
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.tMs).toFixed(1)},${y(p.v).toFixed(1)}`)
      .join('');
    root.append(svg('path', { d, class: 'series' }));
  } else {
    root.append(
      svg('text', { x: w / 2, y: h / 2, class: 'tick', 'text-anchor': 'middle' }, 'collecting samples…'),
    );
  }
  return root;
}
