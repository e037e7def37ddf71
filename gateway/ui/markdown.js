// The composer's live preview: an approximation of the gateway's markdown,
// built from DOM nodes (never parsed as HTML). The real rendering is the
// server's `html`.

/**
 * @param {string} src
 * @returns {DocumentFragment}
 */
export function preview(src) {
  const frag = document.createDocumentFragment();
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  /** @type {string[]} */
  let para = [];
  const flush = () => {
    if (para.length) {
      const p = document.createElement('p');
      para.forEach((l, k) => {
        if (k) p.append(document.createElement('br'));
        inline(p, l);
      });
      frag.append(p);
      para = [];
    }
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = /^\s*(```|~~~)/.exec(line);
    if (fence) {
      flush();
      const code = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) code.push(lines[i++]);
      i++;
      const pre = document.createElement('pre');
      const c = document.createElement('code');
      c.textContent = code.join('\n');
      pre.append(c);
      frag.append(pre);
      continue;
    }
    if (/^\s*>/.test(line)) {
      flush();
      const quote = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quote.push(lines[i++].replace(/^\s*>\s?/, ''));
      const bq = document.createElement('blockquote');
      bq.append(preview(quote.join('\n')));
      frag.append(bq);
      continue;
    }
    const bullet = /^\s*([-*+]|\d+[.)])\s+/.exec(line);
    if (bullet) {
      flush();
      const ordered = /\d/.test(bullet[1]);
      const list = document.createElement(ordered ? 'ol' : 'ul');
      while (i < lines.length) {
        const m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i]);
        if (!m || /\d/.test(m[1]) !== ordered) break;
        const li = document.createElement('li');
        inline(li, m[2]);
        list.append(li);
        i++;
      }
      frag.append(list);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      const el = document.createElement(`h${Math.min(6, heading[1].length + 2)}`);
      inline(el, heading[2]);
      frag.append(el);
      i++;
      continue;
    }
    if (!line.trim()) flush();
    else para.push(line);
    i++;
  }
  flush();
  return frag;
}

const INLINE = /(`+)([^`]+?)\1|\*\*(.+?)\*\*|__(.+?)__|~~(.+?)~~|\*([^*\s][^*]*?)\*|_([^_\s][^_]*?)_|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<]+[^\s<.,;:!?)\]'"])/;

/**
 * @param {Element} parent @param {string} text
 */
function inline(parent, text) {
  let rest = text;
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) {
      parent.append(rest);
      return;
    }
    if (m.index) parent.append(rest.slice(0, m.index));
    if (m[2] != null) parent.append(el('code', m[2]));
    else if (m[3] != null || m[4] != null) parent.append(nest('strong', m[3] ?? m[4]));
    else if (m[5] != null) parent.append(nest('del', m[5]));
    else if (m[6] != null || m[7] != null) parent.append(nest('em', m[6] ?? m[7]));
    else if (m[8] != null) parent.append(link(m[9], m[8]));
    else if (m[10] != null) parent.append(link(m[10], m[10]));
    rest = rest.slice(m.index + m[0].length);
  }
}

/** @param {string} tag @param {string} text */
function el(tag, text) {
  const e = document.createElement(tag);
  e.textContent = text;
  return e;
}

/** @param {string} tag @param {string} text */
function nest(tag, text) {
  const e = document.createElement(tag);
  inline(e, text);
  return e;
}

/** @param {string} href @param {string} text */
function link(href, text) {
  if (!/^(https?:|mailto:)/i.test(href)) return document.createTextNode(text);
  const a = document.createElement('a');
  a.href = href;
  a.rel = 'noopener noreferrer nofollow';
  a.target = '_blank';
  inline(a, text);
  return a;
}
