// Schema validation of Kubernetes manifests, offline: every document read from standard input is
// checked against the JSON schema its kind has in the kubernetes-models packages (the core API of
// the Kubernetes version that kubernetes-models is generated from; the KEDA and Prometheus Operator
// CRDs from @kubernetes-models/keda and @kubernetes-models/prometheus-operator). A kind with no
// schema there fails. Prints one line per object and "N valid, N invalid"; exits 1 on a failure.
//
//   kubectl kustomize deploy/k8s | node deploy/k8s/validate.mjs
//
// (ES module because those packages are; deploy/deploy.unit.spec.ts runs it.)
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const modulePath = (apiVersion, kind) => {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'keda.sh') return `@kubernetes-models/keda/${apiVersion}/${kind}`;
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
};

const docs = parseAllDocuments(readFileSync(0, 'utf8'))
  .map((d) => d.toJS())
  .filter(Boolean);
let failed = 0;
for (const doc of docs) {
  const name = `${doc.kind}/${doc.metadata?.name}`;
  try {
    const module = await import(modulePath(doc.apiVersion, doc.kind));
    const Model = module[doc.kind] ?? module.default;
    new Model(doc).validate();
    console.log(`ok ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
console.log(`${docs.length - failed} valid, ${failed} invalid`);
process.exit(failed ? 1 : 0);
