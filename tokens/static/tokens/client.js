// The reference browser client for cookie mode: an ES module, no dependencies, no build step.
//
//   import {createAuthClient} from "/static/tokens/client.js";
//   const auth = createAuthClient();
//   await auth.restore();               // on page load: one refresh through the cookie
//   const reply = await auth.fetch("/api/auth/me/");
//
// The access token lives in this module's memory only; the refresh token is the server's
// HttpOnly cookie, which no script (this one included) can read. Decisions (when to refresh,
// what a reply means, back-off, which URLs get the token) are the plain functions exported
// first; the client below them only wires timers, fetch, Web Locks and BroadcastChannel.

/** @typedef {"logged-in" | "logged-out" | "unavailable"} Status */
/**
 * @typedef {object} State
 * @property {Status} status
 * @property {string | null} reason  why the client is logged out (a server `code`, "logout")
 * @property {number | null} expiresAt  when the access token expires (ms since the epoch)
 * @property {number | null} refreshAt  when the next refresh is due (ms since the epoch)
 */
/** @typedef {{kind: "ok"} | {kind: "logged-out", reason: string} | {kind: "unavailable"}} Outcome */

/** 401 codes of the refresh endpoint that end the session for good. */
export const ENDING_CODES = ["token_reused", "session_revoked", "token_expired",
  "token_invalid", "user_inactive"];
const LOCK = "tokens-refresh";
const CHANNEL = "tokens";
// The lock holder keeps the lock this long after telling the other tabs, so that a tab
// waiting for it has received the new token before it re-checks (two IPC paths, no order).
const HANDOVER_MS = 1000;
const LOCK_TIMEOUT_MS = 20000;
const REQUEST_TIMEOUT_MS = 10000;
const MAX_TIMER_MS = 5000; // re-check at least this often: timers sleep with the laptop

/**
 * Seconds before expiry at which to refresh: the margin, capped at half the lifetime so that
 * no setting (a margin longer than the lifetime) can make a refresh loop.
 * @param {number} lifetime  the access token's lifetime in seconds (expires_in)
 * @param {number} margin  the configured refreshMarginSeconds
 * @returns {number}
 */
export function effectiveMargin(lifetime, margin) {
  return Math.max(0, Math.min(margin, lifetime / 2));
}

/**
 * When the token received at `receivedAt` (ms) with `expires_in` seconds is to be refreshed.
 * @param {number} receivedAt @param {number} lifetime @param {number} margin @returns {number}
 */
export function refreshDueAt(receivedAt, lifetime, margin) {
  return receivedAt + (lifetime - effectiveMargin(lifetime, margin)) * 1000;
}

/**
 * What a refresh (or login) reply means: the HTTP status and the body's `code`; a network
 * failure or timeout is status 0. An outage (503, 5xx, 429, network) is never a logout.
 * @param {number} status @param {string | null | undefined} code @returns {Outcome}
 */
export function refreshOutcome(status, code) {
  if (status >= 200 && status < 300) return {kind: "ok"};
  if (status === 0 || status === 429 || status >= 500) return {kind: "unavailable"};
  if (status === 401 && code && ENDING_CODES.includes(code)) return {kind: "logged-out", reason: code};
  return {kind: "logged-out", reason: code || `http_${status}`};
}

/**
 * Milliseconds to wait before retry number `attempt` (0, 1, ...): exponential from `base`,
 * capped at `cap`, with "equal jitter" (half fixed, half random) so tabs and clients that
 * failed together do not come back together.
 * @param {number} attempt @param {number} random  in [0, 1) @param {number} [base]
 * @param {number} [cap] @returns {number}
 */
export function backoffDelay(attempt, random, base = 1000, cap = 30000) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + (ceiling / 2) * random;
}

/**
 * Whether `url` may carry the access token: under the API base (same origin and path
 * prefix), or anywhere on the base's origin when `baseUrl` is absolute. Never another origin.
 * @param {string} url @param {string} baseUrl @param {string} pageUrl @returns {boolean}
 */
export function isApiUrl(url, baseUrl, pageUrl) {
  const base = new URL(baseUrl, pageUrl);
  const target = new URL(url, pageUrl);
  if (target.origin !== base.origin) return false;
  if (/^([a-z][a-z\d+.-]*:)?\/\//i.test(baseUrl)) return true;
  const prefix = base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`;
  return target.pathname.startsWith(prefix);
}

/**
 * The uid and token of a password reset link whose fragment is `#reset=<uid>/<token>`
 * (TOKENS["PASSWORD_RESET_URL"] = "https://app.example/page#reset={uid}/{token}"): in the
 * fragment, which browsers send to no server, so no access log sees the token.
 * @param {string} hash  location.hash @returns {{uid: string, token: string} | null}
 */
export function resetLinkFrom(hash) {
  const match = /^#reset=([A-Za-z0-9_-]+)\/([A-Za-z0-9-]+)$/.exec(hash);
  return match ? {uid: match[1], token: match[2]} : null;
}

/**
 * Whether a refresh is needed now: no token, or the due time has passed.
 * @param {number} now @param {number | null} refreshAt @returns {boolean}
 */
export function needsRefresh(now, refreshAt) {
  return refreshAt === null || now >= refreshAt;
}

/**
 * A client for the cookie-mode endpoints under `baseUrl`.
 * @param {{baseUrl?: string, refreshMarginSeconds?: number}} [options]
 */
export function createAuthClient({baseUrl = "/api/auth/", refreshMarginSeconds = 30} = {}) {
  const root = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  const url = (/** @type {string} */ path) => new URL(root + path, location.href).href;
  const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
  /** @type {Set<(state: State) => void>} */
  const listeners = new Set();
  /** @type {State} */
  let state = {status: "logged-out", reason: null, expiresAt: null, refreshAt: null};
  /** @type {string | null} */
  let accessToken = null;
  /** @type {string | null} the Idempotency-Key of a refresh that got no answer, to retry */
  let pendingKey = null;
  let attempt = 0;
  let epoch = 0; // bumped by every logout: work started before it is dropped
  /** @type {Promise<unknown> | null} */
  let inflight = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {AbortController} */
  let aborter = new AbortController();

  /** @param {Partial<State>} change */
  function setState(change) {
    state = {...state, ...change};
    for (const listener of listeners) listener(state);
  }

  /** @param {{access_token: string, expires_in: number}} body */
  function adopt(body, receivedAt = Date.now()) {
    accessToken = body.access_token;
    const refreshAt = refreshDueAt(receivedAt, body.expires_in, refreshMarginSeconds);
    pendingKey = null;
    attempt = 0;
    setState({status: "logged-in", reason: null, refreshAt,
      expiresAt: receivedAt + body.expires_in * 1000});
    schedule();
  }

  /** Drop everything this tab holds and stop: no timer, no retry, no refresh after this. */
  function drop(/** @type {string} */ reason) {
    epoch += 1;
    accessToken = null;
    pendingKey = null;
    attempt = 0;
    clearTimeout(timer);
    aborter.abort();
    aborter = new AbortController();
    setState({status: "logged-out", reason, expiresAt: null, refreshAt: null});
  }

  function schedule(delay = state.refreshAt === null ? MAX_TIMER_MS : state.refreshAt - Date.now()) {
    clearTimeout(timer);
    if (state.status === "logged-out") return;
    timer = setTimeout(check, Math.max(0, Math.min(delay, MAX_TIMER_MS)));
  }

  /** Refresh when due (timers, focus, visibility, online): the one place that decides. */
  function check() {
    if (state.status === "logged-out") return;
    if (state.status === "unavailable" || needsRefresh(Date.now(), state.refreshAt)) {
      refresh().catch(() => {});
    } else {
      schedule();
    }
  }

  /** @param {object} message */
  function tell(message) {
    if (channel) channel.postMessage(message);
  }

  if (channel) {
    channel.onmessage = ({data}) => {
      if (data.type === "token" && (state.status !== "logged-out" || data.login)) {
        adopt(data.body, data.receivedAt);
      } else if (data.type === "pending-key" && state.status !== "logged-out") {
        pendingKey = data.key; // a retry from this tab must be a retry of that refresh
      } else if (data.type === "logged-out" && state.status !== "logged-out") {
        drop(data.reason);
      }
    };
  }

  /**
   * Run `task` holding the cross-tab lock (or alone, where Web Locks are missing or the
   * lock is not granted in time: the server's ROTATION_LEEWAY keeps racing tabs logged in).
   * @param {() => Promise<boolean | void>} task  true when it shared a new token
   */
  async function withLock(task) {
    if (!navigator.locks) return task();
    try {
      await navigator.locks.request(LOCK, {signal: AbortSignal.timeout(LOCK_TIMEOUT_MS)},
        async () => {
          // Only after a success: a retry scheduled sooner must not find the lock taken.
          if (await task() && channel) {
            await new Promise((resolve) => setTimeout(resolve, HANDOVER_MS));
          }
        });
    } catch (error) {
      if (/** @type {Error} */ (error).name !== "TimeoutError") throw error;
      await task();
    }
  }

  /**
   * Get a new access token through the cookie, once across tabs. `stale`: the token a 401
   * refused (refresh unless another tab has replaced it meanwhile).
   * @param {{stale?: string | null, restoring?: boolean}} [options]
   * @returns {Promise<unknown>}
   */
  function refresh({stale = null, restoring = false} = {}) {
    // A refresh already on its way may have been sent before `stale` was refused: then one
    // more, after it (the token it brings may be refused for the same reason).
    if (inflight) {
      return inflight.then(() => (stale !== null && accessToken === stale
        ? refresh({stale}) : undefined));
    }
    const started = epoch;
    inflight = withLock(async () => {
      if (epoch !== started || (state.status === "logged-out" && !restoring)) return false;
      // Another tab may have refreshed while this one waited for the lock.
      const replaced = stale !== null && accessToken !== null && accessToken !== stale;
      if (replaced || (stale === null && state.status === "logged-in"
          && !needsRefresh(Date.now(), state.refreshAt))) return false;
      return refreshOnce(started, restoring);
    }).finally(() => { inflight = null; });
    return inflight;
  }

  /**
   * One refresh request; a retry of the last unanswered one (its key) when there is one.
   * @param {number} started @param {boolean} [restoring]
   * @returns {Promise<boolean>} whether a new token was shared
   */
  async function refreshOnce(started, restoring = false) {
    const key = pendingKey || crypto.randomUUID();
    pendingKey = key;
    const {status, body} = await post("cookie/refresh/", {"Idempotency-Key": key});
    if (epoch !== started) return false; // logged out meanwhile: the answer is not ours
    const outcome = refreshOutcome(status, body && body.code);
    if (outcome.kind === "ok") {
      const receivedAt = Date.now();
      adopt(body, receivedAt);
      tell({type: "token", body, receivedAt});
      return true;
    } else if (outcome.kind === "logged-out" && restoring && state.status === "logged-out") {
      // A page load that found no session ends nothing: a login typed meanwhile in this tab
      // must not be aborted, nor another tab that logged in meanwhile be logged out.
      pendingKey = null;
      setState({reason: outcome.reason});
    } else if (outcome.kind === "logged-out") {
      drop(outcome.reason);
      tell({type: "logged-out", reason: outcome.reason});
    } else {
      tell({type: "pending-key", key});
      setState({status: "unavailable"});
      schedule(backoffDelay(attempt++, Math.random()));
    }
    return false;
  }

  /**
   * POST to a cookie endpoint; status 0 for a network failure or timeout.
   * @param {string} path @param {Record<string, string>} [headers] @param {object} [json]
   * @returns {Promise<{status: number, body: any}>}
   */
  async function post(path, headers = {}, json) {
    const signal = AbortSignal.any([aborter.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    try {
      const reply = await globalThis.fetch(url(path), {
        method: "POST", credentials: "include", signal,
        headers: {"X-Requested-With": "tokens-client", ...headers,
          ...(json ? {"Content-Type": "application/json"} : {})},
        body: json ? JSON.stringify(json) : undefined,
      });
      return {status: reply.status, body: await reply.json().catch(() => null)};
    } catch {
      return {status: 0, body: null};
    }
  }

  /**
   * `fetch` with the access token on API URLs (refreshed first when due); a 401 refreshes
   * once and retries once. Other URLs are fetched untouched.
   * @param {string} target @param {RequestInit} [init] @returns {Promise<Response>}
   */
  async function authFetch(target, init = {}) {
    if (!isApiUrl(target, root, location.href)) return globalThis.fetch(target, init);
    if (state.status !== "logged-out" && needsRefresh(Date.now(), state.refreshAt)) {
      await refresh();
    }
    const send = () => {
      const headers = new Headers(init.headers);
      if (accessToken) headers.set("Authorization", `Bearer ${accessToken}`);
      return globalThis.fetch(target, {...init, headers});
    };
    const used = accessToken;
    const reply = await send();
    if (reply.status !== 401 || used === null) return reply;
    await refresh({stale: used});
    return accessToken && accessToken !== used ? send() : reply;
  }

  /** @param {string} reason */
  function endEverywhere(reason) {
    drop(reason);
    tell({type: "logged-out", reason});
  }

  const onWake = () => { if (document.visibilityState !== "hidden") check(); };
  addEventListener("focus", onWake);
  addEventListener("online", onWake);
  document.addEventListener("visibilitychange", onWake);

  return {
    get state() { return state; },
    /** @param {(state: State) => void} listener @returns {() => void} unsubscribe */
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Restore the session of the cookie (one refresh), on page load. */
    restore() { return refresh({restoring: true}); },
    /**
     * Log in; every tab of this origin is logged in too.
     * @param {string} username @param {string} password
     * @returns {Promise<{ok: boolean, code: string | null}>}
     */
    async login(username, password) {
      const {status, body} = await post("cookie/token/", {}, {username, password});
      if (status !== 200) return {ok: false, code: (body && body.code) || null};
      epoch += 1;
      const receivedAt = Date.now();
      adopt(body, receivedAt);
      tell({type: "token", body, receivedAt, login: true});
      return {ok: true, code: null};
    },
    /** End this session on the server; every tab drops its token. @returns {Promise<boolean>} */
    async logout() {
      endEverywhere("logout");
      const {status} = await post("cookie/logout/");
      return status === 204;
    },
    /** End every session of the user; every tab drops its token. @returns {Promise<boolean>} */
    async logoutEverywhere() {
      const reply = await authFetch(url("logout-all/"), {method: "POST"});
      endEverywhere("logout");
      await post("cookie/logout/"); // expire the cookie too (204 for a dead session)
      return reply.ok;
    },
    /**
     * Ask for a password reset link by email (202 whether or not an account has it).
     * @param {string} email @returns {Promise<{ok: boolean, code: string | null}>}
     */
    async requestPasswordReset(email) {
      const {status, body} = await post("password/reset/", {}, {email});
      return {ok: status === 202, code: (body && body.code) || null};
    },
    /**
     * Set a new password with a reset link's uid and token; every session of the user ends.
     * `errors`: the validators' messages for a refused password (code "invalid").
     * @param {{uid: string, token: string}} link @param {string} newPassword
     * @returns {Promise<{ok: boolean, code: string | null, errors: string[]}>}
     */
    async confirmPasswordReset({uid, token}, newPassword) {
      const {status, body} = await post("password/reset/confirm/", {},
        {uid, token, new_password: newPassword});
      const errors = (body && body.errors && body.errors.new_password) || [];
      return {ok: status === 204, code: (body && body.code) || (status ? null : "unavailable"),
        errors};
    },
    fetch: authFetch,
    /** The user's sessions ({id, created_at, last_used_at, expires_at, user_agent, ...}). */
    async sessions() {
      const reply = await authFetch(url("sessions/"));
      return reply.ok ? reply.json() : [];
    },
    /** @param {string} id @returns {Promise<boolean>} */
    async revokeSession(id) {
      const reply = await authFetch(url(`sessions/${encodeURIComponent(id)}/`),
        {method: "DELETE"});
      return reply.ok;
    },
  };
}
