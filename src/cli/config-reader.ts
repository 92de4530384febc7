import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import { didYouMean } from './did-you-mean.ts';
import { substituteEnv } from './env-substitute.ts';

/**
 * Reads typed values out of a YAML document's nodes, collecting every problem as
 * `file:line: key.path: expectation, got X` so one run of the loader reports them all. Lines come
 * from the node ranges; values come from the nodes, never from `toJS()`, which would lose them.
 */
export class ConfigReader {
  /** Problems found so far, in document order of discovery. */
  readonly errors: string[] = [];
  /** The first reference to an unset environment variable, reported as CONFIG_ENV_MISSING. */
  missingEnv: string | undefined;

  constructor(
    private readonly opts: {
      file: string;
      doc: Document;
      lineCounter: LineCounter;
      env: Readonly<Record<string, string | undefined>>;
      /** False for API bodies: a `${VAR}` in a connection field is refused, never resolved. */
      substitute: boolean;
    },
  ) {}

  line(node: Node | null | undefined, fallback?: Node | null): number {
    const n = node ?? fallback;
    const offset = n?.range?.[0];
    return offset === undefined ? 1 : this.opts.lineCounter.linePos(offset).line;
  }

  fail(node: Node | null | undefined, path: string, message: string, fallback?: Node | null): void {
    this.errors.push(`${this.opts.file}:${this.line(node, fallback)}: ${path}: ${message}`);
  }

  /** Follows `*alias` references to the node they name. */
  resolve(node: unknown): Node | null {
    if (isAlias(node)) return (node.resolve(this.opts.doc) as Node | undefined) ?? null;
    return (node as Node | null | undefined) ?? null;
  }

  /**
   * A mapping's entries by key. Unknown keys and missing required keys are reported here;
   * `known` lists every allowed key.
   */
  map(
    node: Node | null,
    path: string,
    spec: { known: readonly string[]; required: readonly string[] },
    parent?: Node | null,
  ): Map<string, Node | null> | undefined {
    if (!isMap(node)) {
      this.fail(node, path, `expected a mapping (key: value lines), got ${this.describe(node)}`, parent);
      return undefined;
    }
    const entries = new Map<string, Node | null>();
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const keyNode = this.resolve(item.key);
      const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
      const keyPath = path ? `${path}.${key}` : String(key);
      if (key === undefined || !spec.known.includes(key)) {
        const guess = key === undefined ? undefined : didYouMean(key, spec.known);
        const hint = guess ? ` (did you mean "${guess}"?)` : ` (allowed: ${spec.known.join(', ')})`;
        this.fail(keyNode, keyPath, `unknown key${hint}`, node);
        continue;
      }
      entries.set(key, this.resolve(item.value));
    }
    for (const key of spec.required) {
      if (!entries.has(key)) this.fail(node, path || '(top level)', `missing required key "${key}"`);
    }
    return entries;
  }

  list(node: Node | null, path: string, parent?: Node | null): Node[] | undefined {
    if (!isSeq(node)) {
      this.fail(node, path, `expected a list, got ${this.describe(node)}`, parent);
      return undefined;
    }
    return node.items.map((i) => this.resolve(i) ?? (node as Node));
  }

  /** A string, taken as written (no `${VAR}` substitution: see `connectionString`). */
  string(
    node: Node | null,
    path: string,
    parent?: Node | null,
  ): { value: string; shown: string } | undefined {
    if (!isScalar(node) || typeof node.value !== 'string') {
      this.fail(node, path, `expected a string, got ${this.describe(node)}`, parent);
      return undefined;
    }
    return { value: node.value, shown: node.value };
  }

  /**
   * A connection field (source, sink URI): the only place `${VAR}` is read from the environment,
   * and only in a config file. `shown` is what errors may print: the template when a
   * substitution happened (the value may be a secret), else the value itself.
   */
  connectionString(
    node: Node | null,
    path: string,
    parent?: Node | null,
  ): { value: string; shown: string } | undefined {
    const s = this.string(node, path, parent);
    if (!s) return undefined;
    const raw = s.value;
    if (!this.opts.substitute) {
      const ref = /\$\{[^}]*\}/.exec(raw);
      if (ref) {
        this.fail(
          node,
          path,
          `${ref[0]} is not substituted here: the API never reads the server's environment. Write the value (it is masked in every answer), or let \`tidemark changefeed create --config FILE\` substitute it from yours`,
        );
        return undefined;
      }
      return s;
    }
    const r = substituteEnv(raw, this.opts.env);
    if (r.ok) return { value: r.value, shown: r.substituted ? raw : r.value };
    if ('missing' in r) {
      if (this.missingEnv === undefined) {
        this.missingEnv = `${this.opts.file}:${this.line(node)}: ${path}: \${${r.missing}} is not set`;
      }
      return undefined;
    }
    this.fail(
      node,
      path,
      `malformed variable reference ${r.malformed} (write \${NAME} or \${NAME:-default})`,
    );
    return undefined;
  }

  /** A positive integer; strings of digits (after substitution, `_` allowed) count too. */
  positiveInt(node: Node | null, path: string, unit: string, parent?: Node | null): number | undefined {
    const v = this.numberish(node, path, parent);
    if (v === undefined) return undefined;
    const n =
      typeof v.value === 'number'
        ? v.value
        : /^\d[\d_]*$/.test(v.value)
          ? Number(v.value.replaceAll('_', ''))
          : NaN;
    if (Number.isSafeInteger(n) && n > 0) return n;
    this.fail(node, path, `expected a positive integer (${unit}), got ${v.shown}`, parent);
    return undefined;
  }

  /** A byte count: a positive integer or a size with a unit, like `64MiB`, `512 KB`, `1GiB`. */
  bytes(node: Node | null, path: string, parent?: Node | null): number | undefined {
    const v = this.numberish(node, path, parent);
    if (v === undefined) return undefined;
    const n = typeof v.value === 'number' ? v.value : parseSize(v.value);
    if (n !== undefined && Number.isSafeInteger(n) && n > 0) return n;
    this.fail(
      node,
      path,
      `expected a positive size in bytes (an integer, or like "64MiB"), got ${v.shown}`,
      parent,
    );
    return undefined;
  }

  private numberish(
    node: Node | null,
    path: string,
    parent?: Node | null,
  ): { value: number | string; shown: string } | undefined {
    if (isScalar(node) && typeof node.value === 'number')
      return { value: node.value, shown: String(node.value) };
    if (isScalar(node) && typeof node.value === 'string') {
      const s = this.string(node, path, parent);
      return s && { value: s.value.trim(), shown: JSON.stringify(s.shown) };
    }
    return { value: NaN, shown: this.describe(node) };
  }

  describe(node: Node | null | undefined): string {
    if (node == null) return 'nothing';
    if (isMap(node)) return 'a mapping';
    if (isSeq(node)) return 'a list';
    if (isScalar(node)) {
      if (node.value === null) return 'nothing';
      return typeof node.value === 'string' ? JSON.stringify(node.value) : String(node.value);
    }
    return 'an unsupported value';
  }
}

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** `64MiB` → 67108864; undefined when not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.replaceAll('_', ''));
  if (!m) return undefined;
  const unit = UNITS[(m[2] || 'b').toLowerCase()];
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit);
}
