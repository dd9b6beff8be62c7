#!/usr/bin/env node
// A blind HTTP reverse proxy in front of the upstream: Node's HTTP server and an undici pool, the request and response
// bodies forwarded as bytes without parsing. What any Node process that terminates HTTP pays per call before doing
// anything of its own; bench/pipe.mjs (a TCP splice) is the floor below that.
//   node bench/pipe-http.mjs <upstream-port>   → prints "listening <port>"
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstreamPort = Number(process.argv[2]);
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 64, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'proxy-connection', 'te', 'trailer']);

const server = createServer((req, res) => {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'DELETE';
  pool.stream(
    { path: req.url, method: req.method, headers, body: hasBody ? req : undefined, signal: undefined },
    ({ statusCode, headers: upHeaders }) => {
      const out = {};
      for (const [k, v] of Object.entries(upHeaders)) if (!HOP.has(k)) out[k] = v;
      res.writeHead(statusCode, out);
      return res;
    },
    (err) => {
      if (err && !res.headersSent) {
        res.writeHead(502).end();
      } else if (err) res.destroy();
    },
  );
  req.on('error', () => res.destroy());
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
// Exit normally on SIGTERM (as the bench stops it), so a --cpu-prof profile is written.
process.on('SIGTERM', () => process.exit(0));
