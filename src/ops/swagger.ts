// Swagger UI at /swagger, entirely from the binary: our own small page (the openapi plugin's
// page links its CSS and JS on unpkg) and swagger-ui-dist's files, embedded at build time.

import { Elysia, t } from "elysia";
import favicon16 from "swagger-ui-dist/favicon-16x16.png" with { type: "file" };
import favicon32 from "swagger-ui-dist/favicon-32x32.png" with { type: "file" };
import css from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import bundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import { NotFound } from "../errors.ts";

const ASSETS: Record<string, { path: string; type: string }> = {
  "swagger-ui.css": { path: css, type: "text/css; charset=utf-8" },
  "swagger-ui-bundle.js": { path: bundle, type: "text/javascript; charset=utf-8" },
  "favicon-32x32.png": { path: favicon32, type: "image/png" },
  "favicon-16x16.png": { path: favicon16, type: "image/png" },
};

/**
 * The page; `base` leads from the page's URL to /swagger/, so it also works under a prefix.
 * With the token the page was opened with (?token=, when ERRANDS_TOKEN is set), its files are
 * linked with it and its requests, the document's and Try it out's, carry it as a bearer.
 */
export function swaggerPage(base: string, title: string, token: string | null = null): string {
  const query = token === null ? "" : `?token=${encodeURIComponent(token)}`;
  const options = {
    url: `${base}json`,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    // The default validator is a badge image fetched from validator.swagger.io.
    validatorUrl: null,
  };
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="${base}assets/swagger-ui.css${query}">
<link rel="icon" type="image/png" href="${base}assets/favicon-32x32.png${query}" sizes="32x32">
<link rel="icon" type="image/png" href="${base}assets/favicon-16x16.png${query}" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${base}assets/swagger-ui-bundle.js${query}"></script>
<script>
const token = ${inScript(token)};
window.ui = SwaggerUIBundle(Object.assign(${inScript(options)}, {
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  requestInterceptor: (request) => {
    if (token !== null && !request.headers.Authorization) {
      request.headers.Authorization = "Bearer " + token;
    }
    return request;
  },
}));
</script>
</body>
</html>
`;
}

/** A value as JavaScript inside a <script> element: JSON that cannot close the element. */
function inScript(value: unknown): string {
  return JSON.stringify(value).replaceAll("<", "\\u003c");
}

const hidden = { detail: { hide: true } } as const;

export function swaggerRoutes(title: string) {
  return new Elysia()
    .get(
      "/swagger",
      ({ request }) => {
        const url = new URL(request.url);
        const base = url.pathname.endsWith("/") ? "" : "swagger/";
        return new Response(swaggerPage(base, title, url.searchParams.get("token")), {
          headers: { "content-type": "text/html; charset=utf-8" },
        });
      },
      hidden,
    )
    .get(
      "/swagger/assets/:name",
      ({ params }) => {
        const asset = ASSETS[params.name];
        if (!asset) throw new NotFound("Not found", `no asset ${params.name}`);
        return new Response(Bun.file(asset.path), {
          headers: { "content-type": asset.type, "cache-control": "public, max-age=3600" },
        });
      },
      { params: t.Object({ name: t.String() }), ...hidden },
    );
}
