// A strict RFC 4180 reader for the tests: CRLF records, quoted fields with doubled quotes, nothing else.
// Anything a spreadsheet would have to guess about (a bare quote, text after a closing quote, a missing
// final CRLF, rows of different widths) is an error, so a test cannot pass on sloppy output.
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`CSV not RFC 4180 at offset ${i} (row ${rows.length + 1}): ${why}`);
  };
  while (i < text.length) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) fail('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            i++;
            break;
          }
        } else field += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
        if (text[i] === '"') fail('quote inside an unquoted field');
        field += text[i++];
      }
    }
    row.push(field);
    if (text[i] === ',') i++;
    else if (text.startsWith('\r\n', i)) {
      i += 2;
      rows.push(row);
      row = [];
    } else fail(i >= text.length ? 'the last record does not end with CRLF' : `unexpected ${JSON.stringify(text[i])}`);
  }
  if (rows.some((r) => r.length !== rows[0]?.length)) throw new Error('CSV rows have different numbers of fields');
  return rows;
}
