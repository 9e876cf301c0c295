// The methods each known path takes, for a 405 with Allow: a tree of the app's route templates
// built once, walked by the path's segments, and asked only when the router found no route.

/** The order methods are listed in an Allow header. */
const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

interface Route {
  /** The template as the app declared it: `/v1/errand/:id`. */
  path: string;
  methods: Set<string>;
}

interface Node {
  statics: Map<string, Node>;
  param?: Node;
  /** A `*` segment: it takes the rest of the path, whatever it is. */
  rest?: Route;
  route?: Route;
}

const newNode = (): Node => ({ statics: new Map() });

export class RouteMethods {
  private readonly root = newNode();

  /**
   * `routes` as Elysia lists them. A GET route answers HEAD too (Elysia serves it), and every
   * path answers OPTIONS (the CORS preflight, before routing).
   */
  constructor(routes: ReadonlyArray<{ method: string; path: string }>) {
    const all: Route[] = [];
    for (const { method, path } of routes) {
      let node = this.root;
      let rest = false;
      for (const segment of segmentsOf(path)) {
        if (segment === "*") {
          rest = true;
          break;
        }
        node = childOf(node, segment);
      }
      const slot = rest ? "rest" : "route";
      const route = node[slot] ?? { path, methods: new Set<string>() };
      node[slot] = route;
      route.methods.add(method.toUpperCase());
      all.push(route);
    }
    for (const route of all) {
      if (route.methods.has("GET")) route.methods.add("HEAD");
      route.methods.add("OPTIONS");
    }
  }

  /**
   * The route a path reaches when it does not take `method`: its template and Allow header.
   * Null for a path no route reaches, and for one that takes the method (or any, `ALL`). A path
   * both a static and a parameter template reach (`/v1/types/history`, `/v1/types/:type`)
   * takes the methods of both: the router tries the parameter for a method the static lacks.
   */
  refusing(method: string, path: string): { route: string; allow: string } | null {
    const routes = find(this.root, segmentsOf(path), 0);
    const first = routes[0];
    if (first === undefined) return null;
    const methods = new Set(routes.flatMap((route) => [...route.methods]));
    if (methods.has(method) || methods.has("ALL")) return null;
    const known = METHOD_ORDER.filter((m) => methods.has(m));
    const others = [...methods].filter((m) => !METHOD_ORDER.includes(m)).sort();
    return { route: first.path, allow: [...known, ...others].join(", ") };
  }
}

/** The node under `node` for a template's segment, made on first use. */
function childOf(node: Node, segment: string): Node {
  if (segment.startsWith(":")) {
    node.param ??= newNode();
    return node.param;
  }
  const child = node.statics.get(segment) ?? newNode();
  node.statics.set(segment, child);
  return child;
}

/** A path's segments, a trailing slash ignored: every route answers with and without one. */
function segmentsOf(path: string): string[] {
  const trimmed = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
  return trimmed.split("/").slice(1);
}

/**
 * Every template that reaches the path, in the router's order: a static segment before a
 * parameter; a parameter is never empty; a `*` only when nothing else reaches it.
 */
function find(node: Node, segments: string[], at: number): Route[] {
  const rest = node.rest ? [node.rest] : [];
  if (at === segments.length) return node.route ? [node.route] : rest;
  const segment = segments[at] ?? "";
  const exact = node.statics.get(segment);
  const found = [
    ...(exact ? find(exact, segments, at + 1) : []),
    ...(node.param && segment !== "" ? find(node.param, segments, at + 1) : []),
  ];
  return found.length > 0 ? found : rest;
}
