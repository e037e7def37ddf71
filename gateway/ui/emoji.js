// Common emoji with search words, for the reaction picker and the composer,
// and their `:shortcode:` names (the ones people know from other chats).

/** @type {[string, string][]} */
export const EMOJI = [
  ['👍', 'thumbs up yes like +1 agree'],
  ['👎', 'thumbs down no dislike -1'],
  ['❤️', 'heart love red'],
  ['😂', 'joy laugh tears lol'],
  ['😄', 'smile happy grin'],
  ['🙂', 'slight smile ok'],
  ['😉', 'wink'],
  ['😍', 'heart eyes love'],
  ['🤔', 'thinking hmm'],
  ['😮', 'wow surprised open mouth'],
  ['😢', 'cry sad tear'],
  ['😡', 'angry mad rage'],
  ['😅', 'sweat smile relief'],
  ['🙃', 'upside down silly'],
  ['😎', 'cool sunglasses'],
  ['🥳', 'party celebrate'],
  ['😴', 'sleep tired zzz'],
  ['🤯', 'mind blown exploding'],
  ['😬', 'grimace awkward'],
  ['🙈', 'see no evil monkey oops'],
  ['🎉', 'tada party celebrate hooray'],
  ['🚀', 'rocket ship launch fast'],
  ['🔥', 'fire hot lit'],
  ['✨', 'sparkles shiny new'],
  ['💯', 'hundred perfect 100'],
  ['✅', 'check done yes complete'],
  ['❌', 'cross no wrong'],
  ['⚠️', 'warning caution'],
  ['👀', 'eyes look watching'],
  ['🙏', 'pray thanks please'],
  ['👏', 'clap applause bravo'],
  ['🙌', 'raised hands hooray'],
  ['💪', 'muscle strong'],
  ['👋', 'wave hello hi bye'],
  ['🤝', 'handshake deal'],
  ['👌', 'ok perfect'],
  ['✌️', 'victory peace'],
  ['🤞', 'fingers crossed luck'],
  ['💡', 'idea bulb light'],
  ['📌', 'pin pushpin'],
  ['📎', 'paperclip attach'],
  ['📝', 'memo note write'],
  ['📅', 'calendar date'],
  ['⏰', 'alarm clock time'],
  ['☕', 'coffee break'],
  ['🍕', 'pizza food'],
  ['🎂', 'cake birthday'],
  ['🐛', 'bug insect'],
  ['🛠️', 'tools fix build'],
  ['📈', 'chart up growth'],
  ['📉', 'chart down'],
  ['🧵', 'thread'],
  ['💬', 'speech chat comment'],
  ['❓', 'question'],
  ['❗', 'exclamation important'],
  ['➕', 'plus add'],
  ['🟢', 'green circle online'],
  ['🔴', 'red circle'],
  ['⭐', 'star favourite'],
  ['🌟', 'glowing star'],
  ['🌈', 'rainbow'],
  ['☀️', 'sun sunny'],
  ['🌧️', 'rain'],
  ['🐐', 'goat'],
];

/**
 * `:name:` → emoji. Names are lowercase `a-z 0-9 _ + -`; some emoji have
 * more than one (`+1` and `thumbsup`).
 * @type {[string, string][]}
 */
const NAMES = [
  ['+1', '👍'], ['thumbsup', '👍'], ['-1', '👎'], ['thumbsdown', '👎'], ['heart', '❤️'], ['joy', '😂'],
  ['smile', '😄'], ['slightly_smiling_face', '🙂'], ['wink', '😉'], ['heart_eyes', '😍'], ['thinking', '🤔'],
  ['open_mouth', '😮'], ['cry', '😢'], ['rage', '😡'], ['sweat_smile', '😅'], ['upside_down_face', '🙃'],
  ['sunglasses', '😎'], ['partying_face', '🥳'], ['sleeping', '😴'], ['exploding_head', '🤯'], ['grimacing', '😬'],
  ['see_no_evil', '🙈'], ['tada', '🎉'], ['rocket', '🚀'], ['fire', '🔥'], ['sparkles', '✨'], ['100', '💯'],
  ['white_check_mark', '✅'], ['x', '❌'], ['warning', '⚠️'], ['eyes', '👀'], ['pray', '🙏'], ['clap', '👏'],
  ['raised_hands', '🙌'], ['muscle', '💪'], ['wave', '👋'], ['handshake', '🤝'], ['ok_hand', '👌'], ['v', '✌️'],
  ['crossed_fingers', '🤞'], ['bulb', '💡'], ['pushpin', '📌'], ['paperclip', '📎'], ['memo', '📝'],
  ['calendar', '📅'], ['alarm_clock', '⏰'], ['coffee', '☕'], ['pizza', '🍕'], ['birthday', '🎂'], ['bug', '🐛'],
  ['hammer_and_wrench', '🛠️'], ['chart_with_upwards_trend', '📈'], ['chart_with_downwards_trend', '📉'],
  ['thread', '🧵'], ['speech_balloon', '💬'], ['question', '❓'], ['exclamation', '❗'], ['heavy_plus_sign', '➕'],
  ['green_circle', '🟢'], ['red_circle', '🔴'], ['star', '⭐'], ['star2', '🌟'], ['rainbow', '🌈'], ['sunny', '☀️'],
  ['cloud_with_rain', '🌧️'], ['goat', '🐐'],
];

/** @type {Map<string, string>} */
export const SHORTCODES = new Map(NAMES);

/** A `:name:` of the table, not inside a word (`a:b:c` stays). */
const SHORTCODE_RE = /(?<![\p{L}\p{N}_]):([a-z0-9_+-]{1,40}):(?![\p{L}\p{N}_])/gu;

/**
 * Replaces known `:name:` shortcodes in plain text (unknown names stay).
 * @param {string} text
 */
export function replaceShortcodeText(text) {
  return text.replace(SHORTCODE_RE, (all, name) => SHORTCODES.get(name) ?? all);
}

/**
 * The same for markdown about to be sent: code spans and fenced blocks keep
 * their text as written.
 * @param {string} md
 */
export function replaceShortcodes(md) {
  return md
    .split(/(```[\s\S]*?(?:```|$)|~~~[\s\S]*?(?:~~~|$)|`[^`\n]*`)/)
    .map((part, i) => (i % 2 ? part : replaceShortcodeText(part)))
    .join('');
}

/**
 * Shortcodes starting with `prefix` (then those containing it), for the
 * composer's `:` autocomplete; one name per emoji.
 * @param {string} prefix @param {number} [max]
 * @returns {{name: string, emoji: string}[]}
 */
export function shortcodesFor(prefix, max = 8) {
  const q = prefix.toLowerCase();
  const starts = NAMES.filter(([n]) => n.startsWith(q));
  const inside = NAMES.filter(([n]) => !n.startsWith(q) && n.includes(q));
  /** @type {Set<string>} */
  const seen = new Set();
  /** @type {{name: string, emoji: string}[]} */
  const out = [];
  for (const [name, emoji] of [...starts, ...inside]) {
    if (seen.has(emoji)) continue;
    seen.add(emoji);
    out.push({ name, emoji });
    if (out.length >= max) break;
  }
  return out;
}
