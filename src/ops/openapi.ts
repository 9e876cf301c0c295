// The OpenAPI document at /swagger/json: @elysiajs/openapi's generator over every route, plus
// what it cannot see: our JSON body parser (it lists no media type for a custom parser), the
// answers every route can give (401, 413, 503), examples, the bearer scheme, and schemas read
// as a client sees them (a union of string literals is an enum, a query number a number).

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
  {
    name: "schedules",
    description: "Recurring errands: one created at each tick of a cron expression or interval.",
  },
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
  "503": { message: "Storage unavailable", error: "the database is closed" },
};

function isErrorBody(schema: unknown): boolean {
  const properties = (schema as { properties?: Json } | undefined)?.properties;
  return properties !== undefined && "message" in properties && "error" in properties;
}

export function openapiDocument(app: AnyElysia, options: { version: string; auth: Auth }): Json {
  // A copy: the generator hands out the routes' own schema objects, which validation uses.
  const generated = plain(
    toOpenAPISchema(app, undefined, undefined, undefined, OPENAPI_VERSION),
  ) as ReturnType<typeof toOpenAPISchema>;
  const paths = generated.paths as Record<string, Record<string, Operation>>;

  for (const route of app.routes) {
    const hooks = route.hooks as {
      body?: unknown;
      detail?: { hide?: boolean; responses?: Record<string, Json> };
    };
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
    describeParameters(operation, route.hooks as Record<string, unknown>);
    operation.responses ??= {};
    // The generator drops the route's own described answers once it has response schemas.
    for (const [status, answer] of Object.entries(hooks.detail?.responses ?? {})) {
      operation.responses[status] ??= answer;
    }
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
      if (options.auth.takesQueryToken(route.path)) {
        operation.security = [{ bearerAuth: [] }, { tokenQuery: [] }];
      }
    } else if (options.auth.enabled) {
      // Exempt from the document's requirement; with no tokens there is none to be exempt from.
      operation.security = [];
    }
    if (operation.requestBody) operation.responses["413"] ??= refer("BodyTooLarge");
    operation.responses["503"] ??= refer("StorageUnavailable");
  }

  readAsClientsSee(paths);
  readAsClientsSee(generated.components.schemas);

  const used = new Set(
    Object.values(paths).flatMap((ops) => Object.values(ops).flatMap((op) => op.tags ?? [])),
  );
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: "Errands",
      version: options.version,
      description:
        "A language-agnostic job queue spoken over HTTP. Times are milliseconds since the Unix epoch. Every path also answers with a trailing slash. A path asked with a method it does not take answers 405 with an `Allow` header; an unknown path, 404.",
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
        tokenQuery: {
          type: "apiKey",
          in: "query",
          name: "token",
          description:
            "The same token in the URL, where a browser cannot set a header (EventSource); only the event stream reads it.",
        },
      },
    },
    security: options.auth.enabled ? [{ bearerAuth: [] }] : [],
  };
}

const PARAMETER_SCHEMAS = { path: "params", query: "query", header: "headers" } as const;

/** Puts back the descriptions the generator drops when it turns a parameter's union into an enum. */
function describeParameters(operation: Operation, hooks: Record<string, unknown>): void {
  const parameters = (operation.parameters ?? []) as Array<{
    name: string;
    in: string;
    schema?: Json;
  }>;
  for (const parameter of parameters) {
    const from = PARAMETER_SCHEMAS[parameter.in as keyof typeof PARAMETER_SCHEMAS];
    const properties = (hooks[from] as { properties?: Record<string, Json> } | undefined)
      ?.properties;
    const description = properties?.[parameter.name]?.description;
    if (parameter.schema && typeof description === "string")
      parameter.schema.description ??= description;
  }
}

/**
 * Rewrites, in place, two shapes the generator writes as TypeBox builds them: a union of
 * string literals becomes `enum`, and Elysia's coercible query number (a numeric string or a
 * number) becomes the number it is decoded to, so a client reads `limit` as an integer.
 */
function readAsClientsSee(value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) readAsClientsSee(item);
    return;
  }
  const schema = value as Json;
  const choices = schema.anyOf;
  if (Array.isArray(choices)) {
    const literals = choices.every(
      (c: Json) =>
        c.type === "string" && typeof c.const === "string" && Object.keys(c).length === 2,
    );
    const numeric = choices.find((c: Json) => c.type === "integer" || c.type === "number");
    const coerced =
      choices.length === 2 &&
      numeric !== undefined &&
      choices.some(
        (c: Json) => c.type === "string" && (c.format === "integer" || c.format === "numeric"),
      );
    if (literals && choices.length > 0) {
      delete schema.anyOf;
      Object.assign(schema, { type: "string", enum: choices.map((c: Json) => c.const) });
    } else if (coerced) {
      delete schema.anyOf;
      Object.assign(schema, numeric);
    }
  }
  for (const child of Object.values(schema)) readAsClientsSee(child);
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
