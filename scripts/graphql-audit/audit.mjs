// Runs every graphql-http server audit against the GraphQL endpoint given as the first argument
// and prints one JSON array: [{ "id", "name", "status": "ok" | "notice" | "warn" | "error",
// "reason" }]. An "error" is a failed MUST, a "warn" a failed SHOULD, a "notice" a failed MAY.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint URL>');
  process.exit(2);
}
const results = await auditServer({ url });
console.log(
  JSON.stringify(
    results.map((r) => ({ id: r.id, name: r.name, status: r.status, reason: r.reason ?? null })),
  ),
);
