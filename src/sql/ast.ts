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
