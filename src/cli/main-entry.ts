// Runs the CLI from source (`node --import tsx src/cli/main-entry.ts …`), as bin/tidemark.js
// runs the compiled one.
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
