import * as fs from 'node:fs';
import * as path from 'node:path';
import avro from 'avsc';
import { avroSchemaOf, catalogue, topicKeys } from './catalogue';

/**
 * BACKWARD_TRANSITIVE, checked before any registry sees it: the current schema of each topic must
 * read data written with every earlier committed version in schemas/history/<suffix>/v<N>.avsc.
 * The newest history version must equal the current schema, so every change leaves a version behind.
 */
const historyDir = path.join(__dirname, 'history');

function versionsOf(suffix: string): { version: number; schema: object }[] {
  const dir = path.join(historyDir, suffix);
  return fs
    .readdirSync(dir)
    .map((f) => /^v(\d+)\.avsc$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({
      version: Number(m[1]),
      schema: JSON.parse(fs.readFileSync(path.join(dir, m[0]), 'utf8')) as object,
    }))
    .sort((a, b) => a.version - b.version);
}

/** Reasons a reader cannot read a writer's data (empty when compatible). */
function backwardProblems(reader: object, writer: object): string[] {
  try {
    avro.Type.forSchema(reader as avro.Schema).createResolver(avro.Type.forSchema(writer as avro.Schema));
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

describe('schema evolution', () => {
  it.each(topicKeys)('%s: the current schema reads every committed version (BACKWARD_TRANSITIVE)', (key) => {
    const versions = versionsOf(catalogue[key].schema);
    expect(versions.length).toBeGreaterThan(0);
    const current = avroSchemaOf(key);
    for (const v of versions)
      expect({ version: v.version, problems: backwardProblems(current, v.schema) }).toEqual({
        version: v.version,
        problems: [],
      });
  });

  it.each(topicKeys)(
    '%s: the newest committed version is the current schema (copy a changed schema to the next vN.avsc)',
    (key) => {
      const versions = versionsOf(catalogue[key].schema);
      expect(versions.at(-1)!.schema).toEqual(avroSchemaOf(key));
    },
  );

  it('refuses a change that adds a field without a default, and accepts one with a default', () => {
    const v1 = avroSchemaOf('vehicle') as { fields: object[] };
    const withoutDefault = { ...v1, fields: [...v1.fields, { name: 'gear', type: 'int', doc: 'x' }] };
    const withDefault = {
      ...v1,
      fields: [...v1.fields, { name: 'gear', type: ['null', 'int'], default: null, doc: 'x' }],
    };
    expect(backwardProblems(withoutDefault, v1)).toEqual([expect.stringContaining('gear')]);
    expect(backwardProblems(withDefault, v1)).toEqual([]);
  });
});
