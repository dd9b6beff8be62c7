/** Serves the web console (SPEC §11) at /ui/ from the files built into the package (dist/ui): no CDN, works offline. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';

/** dist/downstream/console-static.js → dist/ui */
export const CONSOLE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'ui');

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export function createConsoleStatic(dir: string = CONSOLE_DIR): Router {
  const router = Router();
  router.use((_req, res, next) => {
    res.set(SECURITY_HEADERS);
    next();
  });
  if (!existsSync(join(dir, 'index.html'))) {
    router.use((_req, res) => {
      res.status(503).type('text/plain').send(`The console is not built (no ${join(dir, 'index.html')}); run "npm run build" in the package, then reload.`);
    });
    return router;
  }
  router.use(express.static(dir, { index: 'index.html', fallthrough: true, maxAge: 0, redirect: true }));
  router.use((_req, res) => {
    res.status(404).type('text/plain').send('No such console file; open /ui/.');
  });
  return router;
}
