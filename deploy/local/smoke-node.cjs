// Part of deploy/local/smoke.sh: checks the local stack with the app's own
// clients, kafkajs and @kafkajs/confluent-schema-registry (resolved from the
// repo's node_modules). Prints one line per passed check; exits 1 on failure.
//   KAFKA_BROKERS=127.0.0.1:9092 SCHEMA_REGISTRY_URL=http://127.0.0.1:8081/apis/ccompat/v7 node smoke-node.cjs
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');
const { SchemaRegistry, SchemaType, COMPATIBILITY } = require('@kafkajs/confluent-schema-registry');

const brokers = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',');
const registryUrl = process.env.SCHEMA_REGISTRY_URL || 'http://127.0.0.1:8081/apis/ccompat/v7';
const run = `${process.pid}-${Date.now()}`;

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function kafkaTransactions() {
  // logLevel NOTHING: right after an abort the broker answers
  // CONCURRENT_TRANSACTIONS once and kafkajs retries; that log line is noise.
  const kafka = new Kafka({ clientId: 'vigil-smoke', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const input = `vigil-smoke-in-${run}`;
  const output = `vigil-smoke-out-${run}`;
  await admin.createTopics({ topics: [{ topic: input, numPartitions: 3 }, { topic: output, numPartitions: 3 }], waitForLeaders: true });

  const producer = kafka.producer({ transactionalId: `vigil-smoke-${run}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let tx = await producer.transaction();
  await tx.send({ topic: input, messages: [{ key: 'k', value: 'aborted' }] });
  await tx.abort();
  tx = await producer.transaction();
  await tx.send({ topic: input, messages: [{ key: 'k', value: 'committed' }] });
  await tx.commit();
  console.log('kafkajs transactional producer: abort + commit');

  // Consume-transform-produce with the offsets committed inside the transaction
  // (the exactly-once pattern), reading committed data only.
  const groupId = `vigil-smoke-${run}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  const seen = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no committed record within 30 s (saw ${seen})`)), 30000);
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ topic, partition, message }) => {
          seen.push(message.value.toString());
          const t = await producer.transaction();
          await t.send({ topic: output, messages: [{ value: `out-${message.value}` }] });
          await t.sendOffsets({
            consumerGroupId: groupId,
            topics: [{ topic, partitions: [{ partition, offset: (BigInt(message.offset) + 1n).toString() }] }],
          });
          await t.commit();
          clearTimeout(timer);
          resolve();
        },
      })
      .catch(reject);
  });
  await new Promise((r) => setTimeout(r, 300)); // let a stray aborted record show up, if any
  await consumer.disconnect();
  check(!seen.includes('aborted'), 'read_committed consumer saw the aborted record');
  check(seen.includes('committed'), `committed record not consumed (saw ${seen})`);
  const offsets = await admin.fetchOffsets({ groupId, topics: [input] });
  const committed = offsets[0].partitions.filter((p) => p.offset !== '-1');
  check(committed.length === 1, `expected one committed offset, got ${JSON.stringify(offsets)}`);
  console.log('kafkajs read_committed consume + sendOffsets in a transaction');
  await producer.disconnect();
  await admin.deleteTopics({ topics: [input, output] }).catch(() => {});
  await admin.disconnect();
}

async function schemaRegistry() {
  const registry = new SchemaRegistry({ host: registryUrl });
  const subject = `vigil-smoke-${run}-value`;
  const opts = { subject, compatibility: COMPATIBILITY.BACKWARD_TRANSITIVE };
  const v1 = { type: 'record', name: 'Smoke', namespace: 'vigil.smoke', fields: [{ name: 'a', type: 'string' }] };

  const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, opts);
  // Same schema, different formatting: must map to the same id (canonical hash).
  const again = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1, null, 2) }, opts);
  check(again.id === id, `re-registering the same schema gave id ${again.id}, expected ${id}`);
  console.log(`schema registry: register ${subject} -> id ${id} (stable on re-register)`);

  const payload = await registry.encode(id, { a: 'hello' });
  // A fresh client has an empty cache, so decode really does GET /schemas/ids/<id>.
  const decoded = await new SchemaRegistry({ host: registryUrl }).decode(payload);
  check(decoded.a === 'hello', `decode gave ${JSON.stringify(decoded)}`);
  console.log('schema registry: encode + decode through GET /schemas/ids/<id>');

  const bad = { ...v1, fields: [...v1.fields, { name: 'b', type: 'int' }] };
  let refused = false;
  try {
    await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(bad) }, opts);
  } catch (e) {
    refused = e.status === 409;
    if (!refused) throw e;
  }
  check(refused, 'incompatible schema was accepted under BACKWARD_TRANSITIVE');
  const good = { ...v1, fields: [...v1.fields, { name: 'c', type: 'int', default: 0 }] };
  const v2 = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(good) }, opts);
  check(v2.id !== id, 'compatible v2 got the same id as v1');
  console.log('schema registry: BACKWARD_TRANSITIVE refuses incompatible (409), accepts compatible');
  // The library has no delete; leave no smoke subjects behind.
  await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}`, { method: 'DELETE' }).catch(() => {});
}

(async () => {
  await kafkaTransactions();
  await schemaRegistry();
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
