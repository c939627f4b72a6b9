/**
 * A tiny document model — headings, paragraphs, tables, images, quoted samples — written out as
 * Markdown and as standalone HTML, so report.md and report.html always say the same thing.
 */

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'table'; header: string[]; rows: string[][] }
  /** `src` is relative to the report file; `alt` doubles as the caption. `svg`: the vector twin. */
  | { kind: 'image'; src: string; alt: string; svg?: string }
  | { kind: 'sample'; prompt: string; completion: string; score: number };

const mdCell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** Quote every line (a completion can span lines and hold Markdown of its own). */
const mdQuote = (text: string): string => text.split('\n').map((l) => `> ${l}`).join('\n');

export function toMarkdown(blocks: readonly Block[]): string {
  const parts = blocks.map((b) => {
    switch (b.kind) {
      case 'heading':
        return `${'#'.repeat(b.level)} ${b.text}`;
      case 'paragraph':
        return b.text;
      case 'table':
        return [
          `| ${b.header.map(mdCell).join(' | ')} |`,
          `| ${b.header.map(() => '---').join(' | ')} |`,
          ...b.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
        ].join('\n');
      case 'image':
        return `![${b.alt}](${b.src})` + (b.svg ? `\n\n[${b.alt} (SVG)](${b.svg})` : '');
      case 'sample':
        return `**Prompt:** ${mdCell(b.prompt)}\n\n${mdQuote(b.completion === '' ? '(empty)' : b.completion)}\n\njudge score: ${b.score.toFixed(2)}`;
    }
  });
  return parts.join('\n\n') + '\n';
}

export function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** `code` spans, the only inline Markdown the report's paragraphs use. */
function inlineHtml(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>').replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

const STYLE = `body{font-family:'DejaVu Sans',Verdana,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left}
th{background:#f3f3f3}figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#555;font-size:90%}
blockquote{margin:.5em 0 1.5em;padding:.3em 1em;border-left:4px solid #ddd;white-space:pre-wrap;color:#333}`;

export function toHtml(title: string, blocks: readonly Block[]): string {
  const body = blocks.map((b) => {
    switch (b.kind) {
      case 'heading':
        return `<h${b.level}>${escapeHtml(b.text)}</h${b.level}>`;
      case 'paragraph':
        return `<p>${inlineHtml(b.text)}</p>`;
      case 'table': {
        const head = `<tr>${b.header.map((h) => `<th>${inlineHtml(h)}</th>`).join('')}</tr>`;
        const rows = b.rows.map((r) => `<tr>${r.map((c) => `<td>${inlineHtml(c)}</td>`).join('')}</tr>`).join('\n');
        return `<table>\n${head}\n${rows}\n</table>`;
      }
      case 'image': {
        const link = b.svg ? ` (<a href="${escapeHtml(b.svg)}">SVG</a>)` : '';
        return `<figure><img src="${escapeHtml(b.src)}" alt="${escapeHtml(b.alt)}"><figcaption>${escapeHtml(b.alt)}${link}</figcaption></figure>`;
      }
      case 'sample':
        return `<p><strong>Prompt:</strong> ${escapeHtml(b.prompt)}</p>\n<blockquote>${escapeHtml(b.completion === '' ? '(empty)' : b.completion)}</blockquote>\n<p>judge score: ${b.score.toFixed(2)}</p>`;
    }
  });
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${escapeHtml(title)}</title>\n<style>\n${STYLE}\n</style>\n</head>\n<body>\n${body.join('\n')}\n</body>\n</html>\n`;
}
