/* Talking to the API from a page: one fetch with the CSRF token, JSON both ways, and a sentence for
   every failure. Loaded by templates/base.html after live.js (and alone by the public demo page), it
   adds to window.VL:

     VL.api(url, {method, json, body, headers, signal, credentials, fallback, reloadWhenLoggedOut})
       -> Promise of the answer's parsed JSON (null for 204 or a body that is not JSON).
       method   "GET" by default; any other method sends the X-CSRFToken header.
       json     a value sent as JSON (sets Content-Type); body: sent as is instead (FormData, a Blob).
       headers, signal, credentials ("same-origin" by default; "omit" sends no cookie and no token).
       fallback (status) -> the page's own sentence for an answer that brings none (status 0: no
                answer at all; not asked for 401/403); return nothing to keep the default below.
       reloadWhenLoggedOut  for reads that poll: a 401/403 reloads the page (the login page then
                shows) and the promise never settles, so the caller draws nothing stale.
       It rejects with an Error whose .message is a sentence for a person, .status the HTTP status
       (0 when the server did not answer) and .data the parsed body or null (a 400's field errors,
       for forms that show them under their fields). An aborted request rejects with the browser's
       AbortError (err.name === "AbortError"), which callers ignore.

     VL.errorText(messages)        DRF's messages for one field ("x", ["x", "y"], {field: [...]}) as
                                   one sentence.
     VL.errorText(data, status)    the sentence for a whole failed answer: 401/403 say the session
                                   ended, DRF's `detail`, else each field's messages ("batch size:
                                   ..."), else "The server refused (error N)." (5xx: "could not
                                   answer"); status 0: the server did not answer.
     VL.csrfToken(scope)           the page's CSRF token (a form's own input first), for the
                                   XMLHttpRequest uploads that show progress.
     VL.apiError(status, data, fallback)  the Error VL.api rejects with, for an XMLHttpRequest's
                                   answer; fallback as for VL.api, or a plain sentence.
     VL.allPages(url, options)     every row of a paginated list ({count, next, previous, results}),
                                   following `next` on this origin; options as for VL.api.
*/
(function () {
  "use strict";
  const VL = window.VL = window.VL || {};
  const NO_ANSWER = "The server did not answer. Check your connection and try again.";
  const LOGGED_OUT = "Your session has ended: reload the page and log in again.";
  const SAFE = ["GET", "HEAD", "OPTIONS"];

  function csrfToken(scope) {
    const input = (scope || document).querySelector("input[name=csrfmiddlewaretoken]") ||
      document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const cookie = document.cookie.split("; ").find(c => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.slice("csrftoken=".length)) : "";
  }

  /* Messages as DRF writes them (a string, a list, or an object of either) joined into one line. */
  function flatten(messages) {
    if (messages === null || messages === undefined) return "";
    if (Array.isArray(messages)) return messages.map(flatten).filter(Boolean).join(" ");
    if (typeof messages === "object") return Object.values(messages).map(flatten).filter(Boolean).join(" ");
    return String(messages);
  }

  /* What a failed answer's body says: its `detail`, or each field's messages after the field's name. */
  function answerText(data) {
    if (!data || typeof data !== "object") return flatten(data);
    if (data.detail !== undefined) return flatten(data.detail);
    return Object.entries(data).map(([field, messages]) =>
      (field === "non_field_errors" ? "" : field.replace(/_/g, " ") + ": ") + flatten(messages)).join(" ");
  }

  function errorText(data, status) {
    if (status === undefined) return flatten(data);
    if (status === 401 || status === 403) return LOGGED_OUT;
    if (answerText(data)) return answerText(data);
    if (!status) return NO_ANSWER;
    if (status >= 500) return "The server could not answer (error " + status + "). Try again in a moment.";
    return "The server refused (error " + status + ").";
  }

  /* The page's own sentence speaks only where the answer says nothing and the session is not the problem. */
  function apiError(status, data, fallback) {
    const own = status === 401 || status === 403 || answerText(data) ? null
      : typeof fallback === "function" ? fallback(status) : fallback;
    const error = new Error(own || errorText(data, status));
    error.status = status;
    error.data = data;
    return error;
  }

  async function parse(response) {
    if (response.status === 204) return null;
    try { return await response.json(); } catch (err) { return null; }
  }

  async function api(url, options) {
    const o = options || {};
    const method = (o.method || "GET").toUpperCase();
    const credentials = o.credentials || "same-origin";
    const headers = Object.assign({ Accept: "application/json" }, o.headers);
    let body = o.body;
    if (o.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(o.json);
    }
    if (!SAFE.includes(method) && credentials !== "omit") headers["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(url, { method, headers, body, credentials, signal: o.signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw apiError(0, null, o.fallback);
    }
    const data = await parse(response);
    if (o.signal && o.signal.aborted) throw new DOMException("The request was aborted.", "AbortError");
    if (response.ok) return data;
    if (o.reloadWhenLoggedOut && (response.status === 401 || response.status === 403)) {
      window.location.reload();
      return new Promise(() => {});
    }
    throw apiError(response.status, data, o.fallback);
  }

  async function allPages(url, options) {
    const rows = [];
    while (url) {
      const page = await api(url, options);
      rows.push(...page.results);
      url = page.next ? (next => next.pathname + next.search)(new URL(page.next, window.location.href)) : null;
    }
    return rows;
  }

  Object.assign(VL, { api, apiError, allPages, csrfToken, errorText });
})();
