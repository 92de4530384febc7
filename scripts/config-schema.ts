/**
 * Writes `tidemark.schema.json` (the JSON Schema of tidemark.yaml) from src/cli/config-schema.ts.
 * `npm run config-schema` after changing a config key; src/cli/config-schema.test.ts fails while
 * the committed file differs.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configSchemaText } from '../src/cli/config-schema.ts';

const file = fileURLToPath(new URL('../tidemark.schema.json', import.meta.url));
writeFileSync(file, configSchemaText());
console.log(`wrote ${file}`);
