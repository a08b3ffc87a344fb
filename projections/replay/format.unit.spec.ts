import { csvColumns, csvHeader, csvRow, escapeFormula, ndjsonLine, wanted } from './format';

describe('export formats', () => {
  const record = {
    partition: 2,
    offset: '41',
    key: 's-1',
    value: {
      event_id: 'e1',
      ts: 1000,
      note: 'a, "quoted" note',
      event: { type: 'AlertRaised', level: 2 },
      score: null,
    },
  };

  it('writes NDJSON lines shaped like vigil tail', () => {
    expect(ndjsonLine(record)).toBe(
      '{"partition":2,"offset":"41","key":"s-1","value":{"event_id":"e1","ts":1000,"note":"a, \\"quoted\\" note","event":{"type":"AlertRaised","level":2},"score":null}}\n',
    );
  });

  it('writes CSV with the value fields after partition, offset and key; nested as JSON, null empty, quoted per RFC 4180', () => {
    const columns = csvColumns(['event_id', 'ts', 'note', 'event', 'score']);
    expect(csvHeader(columns)).toBe('partition,offset,key,event_id,ts,note,event,score\n');
    expect(csvRow(columns, record)).toBe(
      '2,41,s-1,e1,1000,"a, ""quoted"" note","{""type"":""AlertRaised"",""level"":2}",\n',
    );
  });

  it('keeps events with from <= ts < to, of the session and the tenant asked for', () => {
    const e = { ts: 1000, session_id: 's-1' };
    expect(wanted(e, { from: 1000, to: 1001 })).toBe(true);
    expect(wanted(e, { from: 1001 })).toBe(false);
    expect(wanted(e, { to: 1000 })).toBe(false);
    expect(wanted(e, { session: 's-2' })).toBe(false);
    expect(wanted(e, {})).toBe(true);
    expect(wanted({ ...e, tenant_id: 't-1' }, { tenant: 't-1' })).toBe(true);
    expect(wanted({ ...e, tenant_id: 't-1' }, { tenant: 't-2' })).toBe(false);
  });

  it.each([
    ['=1+1', "'=1+1"],
    ['+SUM(A1)', "'+SUM(A1)"],
    ['-2+3', "'-2+3"],
    ['@cmd', "'@cmd"],
    ['\tx', "'\tx"],
    ['\rx', "'\rx"],
    ['-12.5', '-12.5'],
    ['+3e5', '+3e5'],
    ['plain', 'plain'],
    ['a=b', 'a=b'],
  ])('formula-escapes the text cell %j as %j', (cell, escaped) => {
    expect(escapeFormula(cell)).toBe(escaped);
  });

  it('escapes text cells of a CSV row but leaves numbers, even negative ones, alone', () => {
    const row = csvRow(['key', 'score', 'reason'], {
      partition: 0,
      offset: '7',
      key: '=cmd|calc',
      value: { score: -3.5, reason: '@SUM(1)' },
    });
    expect(row).toBe("'=cmd|calc,-3.5,'@SUM(1)\n");
  });
});
