// Untrusted text (PR titles) cannot inject mentions, links or broadcasts into Slack messages.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  approvalRequestBlocks,
  decodeButtonValue,
  encodeButtonValue,
  escapeSlackText,
} from '../../src/shared/slack-format.ts';

describe('escapeSlackText', () => {
  it('escapes control characters and defuses @-mentions', () => {
    expect(escapeSlackText('<!here> & <@U123|bob> @channel')).toBe(
      '&lt;!here&gt; &amp; &lt;@\u200bU123|bob&gt; @\u200bchannel',
    );
  });

  it('never leaves a raw <, > or a bare @mention for any input', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const out = escapeSlackText(text);
        expect(out).not.toMatch(/[<>]/);
        expect(out).not.toMatch(/@(?!\u200b)/);
        expect(out.replace(/&(amp|lt|gt);/g, '')).not.toContain('&');
      }),
    );
  });
});

describe('approvalRequestBlocks', () => {
  it('puts the untrusted title only in escaped plain text and carries change and SHA on the buttons', () => {
    const sha = 'a'.repeat(40);
    const { text, blocks } = approvalRequestBlocks({
      change: 'acme/shop#1',
      title: '<!channel> *urgent* <https://evil|click>',
      sha,
      author: 'sam-dev',
      environments: [{ name: 'production', required: 1, confirm: true }],
    });
    const json = JSON.stringify({ text, blocks });
    expect(json).not.toContain('<!channel>');
    expect(json).not.toContain('<https://evil');
    const actions = blocks.find((b) => (b as { type: string }).type === 'actions') as {
      elements: Array<{ value: string; confirm?: unknown }>;
    };
    expect(decodeButtonValue(actions.elements[0]?.value ?? '')).toEqual({
      change: 'acme/shop#1',
      sha,
      environment: 'production',
    });
    expect(actions.elements[0]?.confirm).toBeDefined();
    expect(decodeButtonValue(encodeButtonValue({ change: 'x', sha: 'not-a-sha' }))).toBeUndefined();
  });
});
