/**
 * Runs in the worker before each integration test file (vitest `setupFiles`): the file's own
 * local-state directory for processes that get none of their own (`TIDEMARK_DATA_DIR`), and its
 * own state dir for the token files servers record (`TIDEMARK_STATE_DIR`), so files running at
 * once in other workers never share either.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';

const dir = mkdtempSync(join(inject('testRunDir'), 'file-'));
process.env.TIDEMARK_DATA_DIR = dir;
process.env.TIDEMARK_STATE_DIR = join(dir, 'state');
