// The OpenAPI document at /swagger/json: @elysiajs/openapi's generator over every route, plus
// what it cannot see: our JSON body parser (it lists no media type for a custom parser), the
// answers every route can give (401, 413, 503), examples, and the bearer scheme.

import { toOpenAPISchema } from "@elysiajs/openapi";
import type { AnyElysia } from "elysia";
import { ErrorBody } from "../errands/model.ts";
import type { Auth } from "./auth.ts";

const OPENAPI_VERSION = "3.1.0";

const TAGS = [
  { name: "errands", description: "Create, claim, report on and finish errands (v1 routes)." },
  { name: "pipelines", description: "Errands run as a dependency graph." },
  { name: "events", description: "Server-Sent Events of every change." },
  { name: "types", description: "Per-type counts, pause and concurrency." },
  { name: "operations", description: "Health and metrics." },
];

type Json = Record<string, unknown>;
type Operation = {
  requestBody?: Json;
  responses?: Record<string, Json>;
  security?: unknown[];
  [key: string]: unknown;
};

/** A TypeBox schema as plain JSON Schema (its symbol-keyed bookkeeping dropped). */
function plain(schema: unknown): Json {
  return JSON.parse(JSON.stringify(schema)) as Json;
}

const errorResponse = (description: string, message: string, error: string): Json => ({
  description,
  content: { "application/json": { schema: plain(ErrorBody), example: { message, error } } },
});

const COMMON_RESPONSES: Record<string, Json> = {
  Unauthorized: errorResponse(
    "Missing or wrong bearer token",
    "Unauthorized",
    "a valid Authorization: Bearer token is required",
  ),
  BodyTooLarge: errorResponse(
    "The body is larger than ERRANDS_MAX_BODY",
    "Body too large",
    "the body is larger than 1048576 bytes (ERRANDS_MAX_BODY)",
  ),
  StorageUnavailable: errorResponse(
    "The database cannot answer",
    "Storage unavailable",
    "the database is closed",
  ),
};

/** What the error envelope typically says for each status, better than one shared example. */
const ERROR_EXAMPLES: Record<string, Json> = {
  "400": { message: "Invalid request", error: "body.type: Expected string" },
  "404": { message: "Errand not found", error: 'no errand has id "0193b3c2-…"' },
  "409": {
    message: "Errand must be in active state",
    error: "errand 0193b3c2-… is completed: only an active errand can update its progress",
  },
};

function isErrorBody(schema: unknown): boolean {
  const properties = (schema as { properties?: Json } | undefined)?.properties;
  return properties !== undefined && "message" in properties && "error" in properties;
}

export function openapiDocument(app: AnyElysia, options: { version: string; auth: Auth }): Json {
  const generated = toOpenAPISchema(app, undefined, undefined, undefined, OPENAPI_VERSION);
  const paths = generated.paths as Record<string, Record<string, Operation>>;

  for (const route of app.routes) {
    const hooks = route.hooks as { body?: unknown; detail?: { hide?: boolean } };
    if (hooks.detail?.hide) continue;
    const method = route.method.toLowerCase();
    const operation = paths[route.path.replace(/:([^/]+)/g, "{$1}")]?.[method];
    if (!operation) continue;
    if (hooks.body !== undefined && method !== "get" && method !== "head") {
      const schema = plain(hooks.body);
      operation.requestBody = {
        // An empty body reads as {} (app.ts): one is needed only where a field is.
        required:
          !isOptional(hooks.body) && ((schema.required as unknown[] | undefined)?.length ?? 0) > 0,
        content: { "application/json": withExample({ schema }) },
      };
    }
    operation.responses ??= {};
    for (const [status, answer] of Object.entries(operation.responses)) {
      const media = (answer.content as Record<string, Json> | undefined)?.["application/json"];
      if (!media) continue;
      const typical = ERROR_EXAMPLES[status];
      if (typical && isErrorBody(media.schema)) media.example ??= typical;
      else Object.assign(media, withExample(media));
    }
    const refer = (name: string) => ({ $ref: `#/components/responses/${name}` });
    if (options.auth.guards(route.method, route.path)) {
      operation.responses["401"] ??= refer("Unauthorized");
    } else {
      operation.security = [];
    }
    if (operation.requestBody) operation.responses["413"] ??= refer("BodyTooLarge");
    operation.responses["503"] ??= refer("StorageUnavailable");
  }

  const used = new Set(
    Object.values(paths).flatMap((ops) => Object.values(ops).flatMap((op) => op.tags ?? [])),
  );
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: "Errands",
      version: options.version,
      description:
        "A language-agnostic job queue spoken over HTTP. Times are milliseconds since the Unix epoch. Every path also answers with a trailing slash.",
      license: { name: "MIT", identifier: "MIT" },
    },
    tags: TAGS.filter((tag) => used.has(tag.name)),
    paths,
    components: {
      schemas: generated.components.schemas,
      responses: COMMON_RESPONSES,
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "One of the tokens in ERRANDS_TOKEN; needed only when it is set.",
        },
      },
    },
    security: options.auth.enabled ? [{ bearerAuth: [] }] : [],
  };
}

function isOptional(schema: unknown): boolean {
  return (
    typeof schema === "object" &&
    schema !== null &&
    (schema as Record<symbol, unknown>)[Symbol.for("TypeBox.Optional")] === "Optional"
  );
}

/** Adds `example` to a media type object, built from its schema's own examples. */
function withExample(media: Json): Json {
  if (media.example !== undefined) return media;
  const example = exampleOf(media.schema, 0);
  return example === undefined ? media : { ...media, example };
}

function exampleOf(value: unknown, depth: number): unknown {
  if (typeof value !== "object" || value === null || depth > 10) return undefined;
  const schema = value as Json;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if (schema.example !== undefined) return schema.example;
  if (schema.const !== undefined) return schema.const;
  if (schema.default !== undefined) return schema.default;
  const choices = (schema.anyOf ?? schema.oneOf) as unknown[] | undefined;
  if (Array.isArray(choices)) {
    for (const choice of choices) {
      const example = exampleOf(choice, depth + 1);
      if (example !== undefined) return example;
    }
    return undefined;
  }
  switch (schema.type) {
    case "object": {
      const out: Json = {};
      for (const [key, property] of Object.entries((schema.properties ?? {}) as Json)) {
        const example = exampleOf(property, depth + 1);
        if (example !== undefined) out[key] = example;
      }
      return out;
    }
    case "array": {
      const item = exampleOf(schema.items, depth + 1);
      return item === undefined ? [] : [item];
    }
    case "string":
      return "string";
    case "integer":
    case "number":
      return 0;
    case "boolean":
      return true;
    default:
      return undefined;
  }
}
