// The HTTP API with the session's key in the Authorization header (never a cookie,
// never the URL).  The key lives in sessionStorage: this tab only, gone when it closes.
const KEY = "jobbudget.key";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export const session = {
  who: null,
  key() {
    return sessionStorage.getItem(KEY);
  },
  set(key, who) {
    sessionStorage.setItem(KEY, key);
    this.who = who;
  },
  clear() {
    sessionStorage.removeItem(KEY);
    this.who = null;
  },
};

let onSignedOut = () => {};
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

async function call(path, { method = "GET", body, accept = "application/json", key = session.key() } = {}) {
  const headers = { Accept: accept };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch {
    throw new ApiError(0, "UNREACHABLE", "The server cannot be reached. Is jobbudget serve running?");
  }
  if (!response.ok) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      /* not JSON */
    }
    const problem = new ApiError(response.status, error.code, error.message || response.statusText, error.field);
    if (response.status === 401 && key === session.key()) onSignedOut(problem);
    throw problem;
  }
  return response;
}

/** JSON from the API (null for 204). */
export async function api(path, options = {}) {
  const response = await call(path, options);
  return response.status === 204 ? null : response.json();
}

/** A body as text (a report in HTML or CSV). */
export async function apiText(path, accept) {
  return (await call(path, { accept })).text();
}

/** Check a key; returns what it may do. */
export async function signIn(key) {
  const who = await api("/v1/whoami", { key });
  session.set(key, who);
  return who;
}

export const q = encodeURIComponent;
