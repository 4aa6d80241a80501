// The CSV an auditor opens in a spreadsheet: RFC 4180 (read back with a strict parser), one row per change,
// and no cell a spreadsheet would run as a formula. Rows come from records of real saved workflow runs.
import { describe, expect, it } from 'vitest';
import { CSV_HEADER, csvCell, csvHeaderLine, csvLine, csvRow } from '../../src/audit/csv.ts';
import { parseCsv } from './csv-parse.ts';
import { savedRecord } from './saved-records.ts';

const column = (row: string[] | undefined, name: (typeof CSV_HEADER)[number]) => row?.[CSV_HEADER.indexOf(name)];

describe('audit CSV rows', () => {
  it('quotes commas, quotes and line breaks so the text reads back unchanged', () => {
    const cells = ['plain', 'a, b', 'say "hi"', 'two\nlines', 'cr\r\nlf', '', 'end'];
    const text = csvLine(cells);
    expect(text).toBe('plain,"a, b","say ""hi""","two\nlines","cr\r\nlf",,end\r\n');
    expect(parseCsv(text)).toEqual([cells]);
  });

  it('defuses cells a spreadsheet would evaluate as formulas, with a leading quote', () => {
    const hostile = ['=HYPERLINK("http://evil.example","click")', '+1+1', '-2+3', '@SUM(A1)', '\t=1', 'safe = 1'];
    const [row] = parseCsv(csvLine(hostile));
    expect(row).toEqual([
      `'=HYPERLINK("http://evil.example","click")`,
      "'+1+1",
      "'-2+3",
      "'@SUM(A1)",
      "'\t=1",
      'safe = 1',
    ]);
    for (const cell of row ?? []) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    // Fails without the guard: the raw cell would start with "=".
    expect(csvCell('=1+1')).toBe("'=1+1");
  });

  it('one row per change under the header, with who initiated, approved and what was deployed', () => {
    const records = [
      savedRecord('v2-happy-path.json'),
      savedRecord('v2-refusals.json'),
      savedRecord('v2-closed-waiting.json'),
      savedRecord(...[1, 2, 3, 4, 5, 6, 7].map((n) => `v2-continue-as-new-run${n}.json`)),
    ];
    const text = csvHeaderLine() + records.map((r) => csvLine(csvRow(r))).join('');
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual([...CSV_HEADER]);
    expect(rows).toHaveLength(records.length);
    expect(rows.map((r) => column(r, 'change'))).toEqual(records.map((r) => r.summary.change));

    const [happy, refusals, waiting, continued] = rows;
    expect(column(happy, 'title')).toBe('Make checkout faster');
    expect(column(happy, 'author')).toBe('sam-dev');
    expect(column(happy, 'initiators')).toBe('sam-dev');
    expect(column(happy, 'approvers')).toBe('alex-reviewer');
    expect(column(happy, 'approval times')).toMatch(
      /^alex-reviewer approve [0-9a-f]{7} at \d{4}-\d\d-\d\dT[\d:.]+Z \(staging, production\)$/,
    );
    expect(column(happy, 'checks result')).toMatch(/^passed at [0-9a-f]{7}$/);
    expect(column(happy, 'environments deployed')).toMatch(
      /^staging deployed \w{7} at \S+Z; production deployed \w{7} at \S+Z$/,
    );
    expect(column(happy, 'segregated')).toBe('yes');
    expect(column(happy, 'refused attempts')).toBe('0');

    // Five initiators, joined with "; ", and the seven refused attempts.
    expect(column(refusals, 'initiators')).toBe('alex-reviewer; jo-platform; kim-qa; pat-peer; sam-dev');
    expect(column(refusals, 'approvers')).toBe('lee-ops');
    expect(column(refusals, 'refused attempts')).toBe('7');

    expect(column(waiting, 'approvers')).toBe('');
    expect(column(waiting, 'environments deployed')).toBe('');

    // A change continued as new is still one row, naming all its runs.
    expect(column(continued, 'runs')?.split('; ')).toHaveLength(7);
    expect(column(continued, 'environments deployed')).toMatch(/^dual deployed /);
  });
});
