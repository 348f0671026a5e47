#!/usr/bin/env node
// Makes sure a Chromium for headless browser tests (playwright-core with executablePath) is
// installed: /usr/bin/chromium or one on PATH, else the Debian package `chromium` (when root with
// apt-get), retrying after `apt-get update`. Plain Node, no dependencies: it runs before anything
// else is built. Exit 0 when a working chromium is there, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { aptInstall, logger } from '../setup/apt.mjs';

const log = logger('ensure-chromium');

function find() {
  const candidates = ['/usr/bin/chromium', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'chromium'))];
  return candidates.find((c) => existsSync(c) && spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0);
}

const found = find();
if (found !== undefined) {
  log(`found ${found}`);
  process.exit(0);
}

if (aptInstall(log, 'chromium')) {
  const now = find();
  if (now !== undefined) {
    log(`installed ${now}`);
    process.exit(0);
  }
}

log('could not install chromium: install the Debian package `chromium` (apt-get install chromium), then retry');
process.exit(1);
