// The dashboard: its page at / and its bundled files at /ui/assets/:name, all from the binary.
// Both are public, like any web app's code: they hold no data, and every number the page shows
// comes from the API, under the token when one is set.

import { basename } from "node:path";
import { Elysia, t } from "elysia";
import { NotFound } from "../errors.ts";
import page from "./index.html";

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

interface Dashboard {
  page: Asset;
  assets: Map<string, Asset>;
}

/** Where the page's files are served, relative to the page (at /), so a path prefix works. */
const ASSET_BASE = "ui/assets/";

/** As bun:bundle describes an HTML import: its files exist only when built ahead of time. */
interface HtmlBundle {
  index: string;
  files?: Array<{
    path: string;
    loader: string;
    headers: { etag: string; "content-type": string };
  }>;
}

let built: Promise<Dashboard> | undefined;

/** The page and its files: bundled into the executable by `bun build --compile`, or, run from
 *  the sources, bundled by Bun once, on the first request. */
export function dashboard(): Promise<Dashboard> {
  built ??= bundle().catch((error) => {
    built = undefined;
    throw error;
  });
  return built;
}

async function bundle(): Promise<Dashboard> {
  const html = page as unknown as HtmlBundle;
  let index: Asset | undefined;
  const assets = new Map<string, Asset>();
  if (html.files) {
    for (const file of html.files) {
      const asset = {
        body: await Bun.file(file.path).bytes(),
        type: file.headers["content-type"],
        etag: `"${file.headers.etag}"`,
      };
      if (file.path === html.index) index = asset;
      else assets.set(basename(file.path), asset);
    }
  } else {
    const result = await Bun.build({ entrypoints: [html.index], minify: true, target: "browser" });
    if (!result.success) throw new AggregateError(result.logs, "the dashboard did not bundle");
    for (const output of result.outputs) {
      const body = new Uint8Array(await output.arrayBuffer());
      const asset = { body, type: output.type, etag: `"${Bun.hash(body).toString(36)}"` };
      if (output.type.startsWith("text/html")) index = asset;
      else assets.set(basename(output.path), asset);
    }
  }
  if (!index) throw new Error("the dashboard bundle has no page");
  return { page: linked(index, [...assets.keys()]), assets };
}

/** The page with its files' links pointing at ASSET_BASE: Bun writes them as `./name` when
 *  bundling at run time and `/name` when compiling. */
function linked(index: Asset, names: string[]): Asset {
  let text = new TextDecoder().decode(index.body);
  for (const name of names) {
    text = text.replaceAll(`"./${name}"`, `"${ASSET_BASE}${name}"`);
    text = text.replaceAll(`"/${name}"`, `"${ASSET_BASE}${name}"`);
  }
  const body = new TextEncoder().encode(text);
  return { body, type: index.type, etag: `"${Bun.hash(body).toString(36)}"` };
}

function answer(asset: Asset, request: Request, cacheControl: string): Response {
  const headers = {
    "content-type": asset.type,
    etag: asset.etag,
    "cache-control": cacheControl,
    "x-content-type-options": "nosniff",
  };
  if (request.headers.get("if-none-match") === asset.etag) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(asset.body, { headers });
}

/** Nothing but this host, for scripts, styles, images and connections; no framing. */
const PAGE_POLICY =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const hidden = { detail: { hide: true } } as const;

export function dashboardRoutes() {
  return new Elysia()
    .get(
      "/",
      async ({ request }) => {
        const response = answer((await dashboard()).page, request, "no-cache");
        response.headers.set("content-security-policy", PAGE_POLICY);
        response.headers.set("referrer-policy", "no-referrer");
        return response;
      },
      hidden,
    )
    .get(
      "/ui/assets/:name",
      async ({ params, request }) => {
        const asset = (await dashboard()).assets.get(params.name);
        if (!asset) throw new NotFound("Not found", `no dashboard file ${params.name}`);
        // Their names change with their content.
        return answer(asset, request, "public, max-age=31536000, immutable");
      },
      { params: t.Object({ name: t.String() }), ...hidden },
    );
}
