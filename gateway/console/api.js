// The REST client: the key from session storage in x-api-key, errors as ApiError, the event stream.
const KEY = "torbox-automation.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
  }
}

function headers(key, json) {
  const out = { "x-api-key": key ?? session.key ?? "" };
  if (json) out["Content-Type"] = "application/json";
  return out;
}

export async function api(method, path, body, key) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(key, body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { error: "The backend cannot be reached", code: "NETWORK" });
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Server-Sent Events over fetch (EventSource cannot send x-api-key); reconnects with backoff.
export function stream(onEvent, onState) {
  const control = new AbortController();
  let delay = 1000;
  async function run() {
    while (!control.signal.aborted) {
      try {
        const response = await fetch("/api/automation/events", {
          headers: headers(), signal: control.signal, cache: "no-store",
        });
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState(true);
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = frame.split("\n").filter((l) => l.startsWith("data: "))
              .map((l) => l.slice(6)).join("\n");
            if (data) {
              try { onEvent(JSON.parse(data)); } catch { /* a frame we cannot read */ }
            }
          }
        }
      } catch { /* reconnect below */ }
      onState(false);
      if (control.signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }
  run();
  return { close() { control.abort(); } };
}
