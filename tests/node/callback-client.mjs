// An independent ringlog client: subscribes per callback type with plain NATS and checks
// every event it receives against the generated JSON Schema.
//
//   node callback-client.mjs --server nats://127.0.0.1:4222 [--prefix ringlog] [--user bob] [--call call42]
//                            [--schemas json|asyncapi]
//
// Schemas come from schemas/json/events/<callback>.json, or, when that folder is absent (or
// with --schemas asyncapi), from the event messages of schemas/asyncapi.yaml. Prints {"ready": true, ...} once subscribed;
// when its standard input closes it prints the report and exits:
//   {"seen": {"invitation.onIncomingCallReceived": 3, ...}, "total": n, "errors": [...]}
import { readFile, readdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { connect } from "nats";
import Ajv2020 from "ajv/dist/2020.js";
import Ajv from "ajv";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..", "..");
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const prefix = args.prefix ?? "ringlog";

// The one id encoding of the contract: bytes outside [A-Za-z0-9_-] become %XX.
export function encodeToken(id) {
  return [...new TextEncoder().encode(id)]
    .map((b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) && b < 128 ? String.fromCharCode(b) : "%" + b.toString(16).toUpperCase().padStart(2, "0")))
    .join("");
}

async function validatorsFromJsonSchemas(folder) {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const index = JSON.parse(await readFile(path.join(root, "schemas", "json", "index.json"), "utf8"));
  const validators = {};
  for (const file of await readdir(folder)) {
    const callback = file.replace(/\.json$/, "");
    const schema = JSON.parse(await readFile(path.join(folder, file), "utf8"));
    validators[callback] = { validate: ajv.compile(schema), categories: index.events[callback].categories };
  }
  return validators;
}

async function validatorsFromAsyncApi() {
  const text = await readFile(path.join(root, "schemas", "asyncapi.yaml"), "utf8");
  const doc = JSON.parse(text.replace(/^#.*\n/gm, "")); // the generator writes JSON after a comment line
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addSchema({ $id: "asyncapi", components: doc.components }, "asyncapi");
  const validators = {};
  for (const channel of Object.values(doc.channels)) {
    const match = /\.evt\.([^.]+)\.([^.]+)\./.exec(channel.address ?? "");
    if (!match) continue;
    const [, category, callback] = match;
    const payloadRef = doc.components.messages[callback].payload.$ref.replace("#", "asyncapi#");
    validators[callback] ??= { validate: ajv.compile({ $ref: payloadRef }), categories: [] };
    validators[callback].categories.push(category);
  }
  return validators;
}

const eventsFolder = path.join(root, "schemas", "json", "events");
const fromJson = args.schemas !== "asyncapi" && existsSync(eventsFolder) && (await readdir(eventsFolder)).length > 0;
const validators = fromJson ? await validatorsFromJsonSchemas(eventsFolder) : await validatorsFromAsyncApi();

const nc = await connect({ servers: args.server ?? "nats://127.0.0.1:4222" });
const seen = {};
const errors = [];
let total = 0;

function check(callback, category, msg) {
  total += 1;
  const key = `${category}.${callback}`;
  seen[key] = (seen[key] ?? 0) + 1;
  let event;
  try {
    event = JSON.parse(new TextDecoder().decode(msg.data));
  } catch (e) {
    return errors.push(`${msg.subject}: not JSON: ${e.message}`);
  }
  const { validate } = validators[callback];
  if (!validate(event)) errors.push(`${msg.subject}: ${JSON.stringify(validate.errors)}`);
  const [, , , , callToken, recipientToken] = msg.subject.slice(prefix.length).split(".");
  if (event.type !== callback) errors.push(`${msg.subject}: type ${event.type}`);
  if (callToken !== encodeToken(event.callID)) errors.push(`${msg.subject}: callID ${event.callID}`);
  if (recipientToken !== encodeToken(event.recipient)) errors.push(`${msg.subject}: recipient ${event.recipient}`);
  if (msg.headers?.get("Nats-Msg-Id") !== event.eventID) errors.push(`${msg.subject}: Nats-Msg-Id is not the eventID`);
}

const call = args.call ? encodeToken(args.call) : "*";
const user = args.user ? encodeToken(args.user) : "*";
for (const [callback, { categories }] of Object.entries(validators)) {
  for (const category of categories) {
    nc.subscribe(`${prefix}.evt.${category}.${callback}.${call}.${user}`, { callback: (err, msg) => (err ? errors.push(String(err)) : check(callback, category, msg)) });
  }
}
await nc.flush();
console.log(JSON.stringify({ ready: true, schemas: fromJson ? "schemas/json/events" : "schemas/asyncapi.yaml", callbacks: Object.keys(validators).length }));

process.stdin.resume();
process.stdin.on("end", async () => {
  await nc.flush();
  await nc.drain();
  console.log(JSON.stringify({ seen, total, errors }));
  process.exit(0);
});
