// Validates AsyncAPI documents with the AsyncAPI parser (the one the AsyncAPI CLI uses) and
// its Avro schema parser, which checks the referenced .avsc files too. Errors and warnings are
// printed; any error fails.
//
//   ASYNCAPI_MODULES=DIR/node_modules node validate.cjs FILE.yaml...
const path = require('node:path');
const { createRequire } = require('node:module');

const modules = process.env.ASYNCAPI_MODULES;
if (!modules) {
  console.error('ASYNCAPI_MODULES must name the node_modules the parser is installed in');
  process.exit(2);
}
const load = createRequire(path.join(modules, 'index.js'));
const { Parser, fromFile } = load('@asyncapi/parser');
const { AvroSchemaParser } = load('@asyncapi/avro-schema-parser');

const SEVERITY = ['error', 'warning', 'info', 'hint'];

async function validate(file) {
  const parser = new Parser();
  parser.registerSchemaParser(AvroSchemaParser());
  const { document, diagnostics } = await fromFile(parser, file).parse();
  let errors = 0;
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? d.path.join('.') : '(document)';
    if (d.severity <= 1) console.log(`${file}: ${SEVERITY[d.severity]}: ${where}: ${d.message} [${d.code}]`);
    if (d.severity === 0) errors += 1;
  }
  if (!document) errors = Math.max(errors, 1);
  if (document) {
    const channels = document.channels().all().map((c) => c.address());
    const messages = document.allMessages().all().length;
    console.log(`${file}: AsyncAPI ${document.version()}, ${channels.length} channels (${channels.join(', ')}), ${messages} messages`);
  }
  return errors;
}

(async () => {
  let errors = 0;
  for (const file of process.argv.slice(2)) errors += await validate(file);
  console.log(`asyncapi: ${errors} errors`);
  process.exit(errors ? 1 : 0);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
