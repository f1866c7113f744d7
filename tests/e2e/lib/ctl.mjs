// Acts on the harness's fleet from a spec: await ctl('poweroff', 'dev1'); await ctl('hub-restart').
// Commands (tests/e2e/ctl.sh): poweroff NODE, poweron NODE, agent-restart NODE, partition NODE,
// heal NODE, hub-restart [KILL], nodes, forward PORT (a server of the spec on 127.0.0.1:PORT,
// made reachable from chromium's own network namespace). Resolves to the command's output; rejects with its output
// when it fails.
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';

export const NODES = (process.env.DROVER_E2E_NODES || 'dev1 dev2 dev3').split(/\s+/).filter(Boolean);

export function ctl(...args) {
  const cmd = process.env.DROVER_E2E_CTL;
  if (!cmd) return Promise.reject(new Error('DROVER_E2E_CTL is not set: run the spec with tests/e2e/run-e2e.sh'));
  return new Promise((resolve, reject) => {
    execFile(cmd, args.map(String), { timeout: 240_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`ctl ${args.join(' ')}: exit ${err.code ?? err.signal}: ${stdout}${stderr}`.trim()));
      } else {
        resolve(stdout);
      }
    });
  });
}

// The hub's API with a token (the admin's by default), outside the browser: for setting up and
// checking what a spec did. api('GET', '/api/v1/nodes') -> {status, json, text, headers}.
// The hub's CA is its own (the tests do not check the hub's certificate).

export function api(method, path, { token = process.env.DROVER_ADMIN_TOKEN, body, headers = {} } = {}) {
  const base = new URL(process.env.DROVER_HUB_URL);
  const mod = base.protocol === 'https:' ? https : http;
  let data = body;
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined && typeof body !== 'string') {
    data = JSON.stringify(body);
    h['Content-Type'] ??= 'application/json';
  }
  return new Promise((resolve, reject) => {
    const req = mod.request(
      new URL(path, base),
      { method, headers: h, rejectUnauthorized: false, timeout: 30_000 },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

// Polls fn() (async, truthy = done) every `every` ms until it holds or `secs` pass (times
// DROVER_TEST_TIME_FACTOR); returns its last value or throws naming `what`.
export async function waitFor(what, secs, fn, every = 250) {
  const deadline = Date.now() + secs * 1000 * Number(process.env.DROVER_TEST_TIME_FACTOR || 1);
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timeout after ${secs} s waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, every));
  }
}
