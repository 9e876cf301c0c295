// Lays a pipeline's dependency graph out in columns: each errand one column right of the
// furthest errand it depends on, so every edge points right.

export interface Placed {
  name: string;
  column: number;
  row: number;
}

export interface Layout {
  nodes: Map<string, Placed>;
  columns: number;
  rows: number;
}

/** `names` in the order sent; `edges` as [dependsOn, target]. A pipeline has no cycles. */
export function layOut(names: string[], edges: Array<[string, string]>): Layout {
  const before = new Map<string, string[]>(names.map((name) => [name, []]));
  for (const [from, to] of edges) before.get(to)?.push(from);
  const column = new Map<string, number>();
  const depth = (name: string, seen: Set<string>): number => {
    const known = column.get(name);
    if (known !== undefined) return known;
    if (seen.has(name)) return 0; // a cycle, which validation refuses: drawn, not looped on
    seen.add(name);
    const deps = before.get(name) ?? [];
    const value = deps.length === 0 ? 0 : 1 + Math.max(...deps.map((d) => depth(d, seen)));
    column.set(name, value);
    return value;
  };
  const nodes = new Map<string, Placed>();
  const filled: number[] = [];
  for (const name of names) {
    const c = depth(name, new Set());
    const row = filled[c] ?? 0;
    filled[c] = row + 1;
    nodes.set(name, { name, column: c, row });
  }
  return { nodes, columns: filled.length, rows: Math.max(0, ...filled) };
}
