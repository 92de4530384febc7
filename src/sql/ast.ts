import type { Node } from 'libpg-query';

/** Splits a node into its kind and body. */
export function nodeKind(node: Node): [string, Record<string, unknown>] {
  const entry = Object.entries(node)[0];
  if (!entry) return ['Unknown', {}];
  return [entry[0], entry[1] as Record<string, unknown>];
}

export function locationOf(node: Node | undefined): number | undefined {
  if (!node) return undefined;
  const loc = nodeKind(node)[1]['location'];
  return typeof loc === 'number' && loc >= 0 ? loc : undefined;
}

export function strings(nodes: readonly Node[] | undefined): string[] {
  return (nodes ?? []).map((n) => {
    const [k, b] = nodeKind(n);
    return k === 'String' ? String(b['sval'] ?? '') : k === 'A_Star' ? '*' : '?';
  });
}

/** `val AS name` for a rewritten select list. */
export function resTarget(name: string, val: Node): Node {
  return { ResTarget: { name, val, location: locationOf(val) ?? -1 } } as Node;
}

/** The boolean literal TRUE. */
export function trueConst(): Node {
  return { A_Const: { boolval: { boolval: true }, location: -1 } } as Node;
}

/** The AND of `nodes`; undefined when there are none. */
export function andNode(nodes: readonly Node[], location?: number): Node | undefined {
  if (nodes.length === 0) return undefined;
  if (nodes.length === 1) return nodes[0];
  return { BoolExpr: { boolop: 'AND_EXPR', args: [...nodes], location: location ?? -1 } } as Node;
}

/** The SubLinks in `nodes`, outermost only (not those inside another subquery). */
export function subLinks(nodes: readonly unknown[]): Node[] {
  const out: Node[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    if ('SubLink' in v) {
      out.push(v as Node);
      return;
    }
    Object.values(v as Record<string, unknown>).forEach(walk);
  };
  nodes.forEach(walk);
  return out;
}
