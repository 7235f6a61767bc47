// Validate an AsyncAPI document with the official parser: one JSON line per diagnostic,
// exit 1 when any is an error (severity 0) or no document could be built.
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(process.argv[2], 'utf8'));
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
const errors = diagnostics.filter((d) => d.severity === 0);
process.exit(errors.length > 0 || !document ? 1 : 0);
