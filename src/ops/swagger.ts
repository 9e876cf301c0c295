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

/** The page; `base` leads from the page's URL to /swagger/, so it also works under a prefix. */
export function swaggerPage(base: string, title: string): string {
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
<link rel="stylesheet" href="${base}assets/swagger-ui.css">
<link rel="icon" type="image/png" href="${base}assets/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="${base}assets/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${base}assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle(Object.assign(${JSON.stringify(options)}, {
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
}));
</script>
</body>
</html>
`;
}

const hidden = { detail: { hide: true } } as const;

export function swaggerRoutes(title: string) {
  const page = (base: string) =>
    new Response(swaggerPage(base, title), {
      headers: { "content-type": "text/html; charset=utf-8" },
    });
  return new Elysia()
    .get(
      "/swagger",
      ({ request }) => page(new URL(request.url).pathname.endsWith("/") ? "" : "swagger/"),
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
