// Where the page is: the part of the URL after #, so a deep link survives a reload and the
// server serves one page.

import { useEffect, useState } from "preact/hooks";

export interface Place {
  /** The view: "", "errands", "errand", "pipelines", "pipeline", "scheduled", "live". */
  view: string;
  /** The id, for "errand" and "pipeline". */
  id: string;
  params: URLSearchParams;
}

export function parsePlace(hash: string): Place {
  const text = hash.replace(/^#\/?/, "");
  const q = text.indexOf("?");
  const path = q < 0 ? text : text.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : text.slice(q + 1));
  const [view = "", ...rest] = path.split("/");
  return { view, id: decodeURIComponent(rest.join("/")), params };
}

/** The link to a view: `#/errands?status=failed`. */
export function href(
  view: string,
  id?: string,
  params?: Record<string, string | undefined>,
): string {
  let link = `#/${view}`;
  if (id) link += `/${encodeURIComponent(id)}`;
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `${link}?${text}` : link;
}

export function go(link: string): void {
  if (location.hash !== link) location.hash = link;
}

export function usePlace(): Place {
  const [place, setPlace] = useState(() => parsePlace(location.hash));
  useEffect(() => {
    const changed = () => setPlace(parsePlace(location.hash));
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return place;
}
