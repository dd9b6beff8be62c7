#!/usr/bin/env node
// Many small MCP servers in one process, for the list benchmark: server i answers Streamable HTTP at /s/{i}/mcp
// with `--tools` tools (t0..t{N-1}, each with a small input schema). Stateless JSON answers, a GET stream that stays
// open (as a server that may send list_changed keeps one), and a count of tools/list requests per server.
//
//   node bench/many-servers.mjs --servers 100 --tools 50     prints: listening http://127.0.0.1:PORT
//   GET /stats                                              {"toolsList": <tools/list requests so far>}
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { servers: { type: 'string', default: '100' }, tools: { type: 'string', default: '50' } } });
const SERVERS = Number(values.servers);
const TOOLS = Number(values.tools);

const toolsOf = (i) =>
  Array.from({ length: TOOLS }, (_, t) => ({
    name: `t${t}`,
    description: `Tool ${t} of server ${i}: returns its arguments.`,
    inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'string' } }, required: ['a'] },
    annotations: { readOnlyHint: true },
  }));
const lists = Array.from({ length: SERVERS }, (_, i) => JSON.stringify(toolsOf(i)));
let toolsList = 0;

function answer(res, id, result) {
  const body = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${result}}`;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const server = createServer((req, res) => {
  if (req.url === '/stats') return res.end(JSON.stringify({ toolsList }));
  const m = /^\/s\/(\d+)\/mcp$/.exec(req.url ?? '');
  const i = m ? Number(m[1]) : -1;
  if (i < 0 || i >= SERVERS) return res.writeHead(404).end();
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': open\n\n');
    return;
  }
  if (req.method === 'DELETE') return res.writeHead(200).end();
  if (req.method !== 'POST') return res.writeHead(405).end();
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return res.writeHead(400).end();
    }
    if (msg.id === undefined) return res.writeHead(202).end();
    switch (msg.method) {
      case 'initialize':
        return answer(res, msg.id, JSON.stringify({ protocolVersion: msg.params?.protocolVersion ?? '2025-11-25', capabilities: { tools: { listChanged: true } }, serverInfo: { name: `s${i}`, version: '1' } }));
      case 'tools/list':
        toolsList++;
        return answer(res, msg.id, `{"tools":${lists[i]}}`);
      case 'tools/call':
        return answer(res, msg.id, JSON.stringify({ content: [{ type: 'text', text: JSON.stringify(msg.params?.arguments ?? {}) }] }));
      case 'ping':
        return answer(res, msg.id, '{}');
      default: {
        const body = JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `Method not found: ${msg.method}` } });
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(body);
      }
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`listening http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
