// Parse schemas/asyncapi.yaml with the AsyncAPI parser; exit 1 on any error diagnostic.
//
//   node validate-asyncapi.mjs [path/to/asyncapi.yaml]
//
// Prints one JSON line: {"errors": [...], "warnings": n, "channels": n, "operations": n, "messages": n}.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const here = path.dirname(fileURLToPath(import.meta.url));
const file = process.argv[2] ?? path.join(here, "..", "..", "schemas", "asyncapi.yaml");
const source = await readFile(file, "utf8");

const parser = new Parser();
const { document, diagnostics } = await parser.parse(source, { source: file });
const describe = (d) => `${d.code}: ${d.message} at ${(d.path ?? []).join(".")}`;
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).map(describe);
const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning).map(describe);

const report = {
  file,
  errors,
  warnings: warnings.length,
  warningSamples: warnings.slice(0, 10),
  version: document?.version() ?? null,
  channels: document ? document.channels().length : 0,
  operations: document ? document.operations().length : 0,
  messages: document ? document.components().messages().length : 0,
};
console.log(JSON.stringify(report));
process.exit(document && errors.length === 0 ? 0 : 1);
