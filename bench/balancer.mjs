// A tiny round-robin HTTP load balancer for replica tests and benches: every header forwarded, bodies and SSE
// streamed both ways, no stickiness. A replica that refuses the connection is skipped for that request (as nginx's
// proxy_next_upstream error does), so a killed replica costs its in-flight calls, not every later one.
import http from 'node:http';

/**
 * @param {{ targets: string[], port?: number, host?: string }} opts targets are base URLs (http://127.0.0.1:PORT)
 * @returns {Promise<{ url: string, port: number, counts: number[], setTargets(t: string[]): void, close(): Promise<void> }>}
 */
export async function startBalancer(opts) {
  let targets = opts.targets.map((t) => new URL(t));
  let next = 0;
  const counts = targets.map(() => 0);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  /** Forward one buffered request to targets[i], falling through to the next on a connection error. */
  const forward = (req, res, body, i, tries) => {
    const target = targets[i % targets.length];
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (up) => {
        counts[i % targets.length]++;
        res.writeHead(up.statusCode ?? 502, up.rawHeaders);
        up.pipe(res);
        // A client that goes away (an SSE stream closed) closes the replica's side too.
        res.on('close', () => up.destroy());
      },
    );
    upstream.on('error', (err) => {
      if (res.headersSent) return res.destroy(err);
      // Only a refused connection is retried: the request never left, so a call cannot run twice (nginx's rule for POST).
      if (err.code === 'ECONNREFUSED' && tries + 1 < targets.length) return forward(req, res, body, i + 1, tries + 1);
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'bad_gateway', message: `no replica answered (${err.code ?? err.message})` }));
    });
    upstream.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => forward(req, res, Buffer.concat(chunks), next++ % targets.length, 0));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    counts,
    setTargets(t) {
      targets = t.map((x) => new URL(x));
      counts.length = 0;
      counts.push(...targets.map(() => 0));
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
