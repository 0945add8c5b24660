// Validates rendered Kubernetes objects against the API's OpenAPI schemas (kubernetes-models and
// @kubernetes-models/prometheus-operator for the monitoring.coreos.com CRDs), offline.
// Usage: node validate-schemas.mjs NODE_MODULES_DIR < objects.json   ([{source, doc}], from
// check_manifests.py to-json). Prints "ok - ..." / "FAIL - ..." per object; exits 1 on any failure.
import { existsSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const { source, doc } of objects) {
  const what = `${source}: ${doc.apiVersion} ${doc.kind} ${doc.metadata?.name}`;
  const [group, version] = doc.apiVersion.includes("/") ? doc.apiVersion.split("/") : ["", doc.apiVersion];
  const file =
    group === "monitoring.coreos.com"
      ? `${modules}/@kubernetes-models/prometheus-operator/${group}/${version}/${doc.kind}.js`
      : `${modules}/kubernetes-models/${group ? group + "/" : ""}${version}/${doc.kind}.js`;
  if (!existsSync(file)) {
    console.log(`FAIL - schema of ${what}: no schema for this kind`);
    failed++;
    continue;
  }
  const Model = (await import(pathToFileURL(file)))[doc.kind];
  try {
    new Model(doc).validate();
    console.log(`ok - schema of ${what}`);
  } catch (e) {
    console.log(`FAIL - schema of ${what}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
