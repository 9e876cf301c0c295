// The page's calls to the errands API: relative URLs, the token as a bearer, errors thrown as
// ApiError with the server's envelope.

const TOKEN_KEY = "errands.token";

/** The token the operator signed in with, kept for this tab only (sessionStorage). */
export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail: string,
  ) {
    super(message);
  }

  /** "Conflict: the errand is active", as the server put it. */
  describe(): string {
    return this.detail ? `${this.message}: ${this.detail}` : this.message;
  }
}

const unauthorized = new Set<() => void>();

/** Told when the server refuses the token (or its absence): the page shows the sign-in form. */
export function onUnauthorized(listener: () => void): () => void {
  unauthorized.add(listener);
  return () => unauthorized.delete(listener);
}

/** Calls the API and answers its JSON body; throws ApiError on any error answer. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  const token = session.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "Server unreachable", "the request did not get an answer");
  }
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: described below by the status alone.
  }
  if (!response.ok) {
    if (response.status === 401) for (const listener of unauthorized) listener();
    const envelope = (json ?? {}) as { message?: string; error?: string };
    throw new ApiError(
      response.status,
      envelope.message ?? `HTTP ${response.status}`,
      envelope.error ?? "",
    );
  }
  return json as T;
}

/** A query string of the values given, in order; undefined and empty ones left out. */
export function query(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}
