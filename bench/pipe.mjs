#!/usr/bin/env node
// A blind TCP byte pipe in front of the upstream: the floor any proxy's CPU per call is compared with.
//   node bench/pipe.mjs <upstream-port>   → prints "listening <port>"
import { connect, createServer } from 'node:net';

const upstreamPort = Number(process.argv[2]);
const server = createServer((down) => {
  const up = connect(upstreamPort, '127.0.0.1');
  down.pipe(up).pipe(down);
  const end = () => {
    down.destroy();
    up.destroy();
  };
  down.on('error', end);
  up.on('error', end);
  down.on('close', end);
  up.on('close', end);
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
// Exit normally on SIGTERM (as the bench stops it), so a --cpu-prof profile is written.
process.on('SIGTERM', () => process.exit(0));
