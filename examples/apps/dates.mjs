// A synthetic translation task for the encoder–decoder example: dates written in words, in several phrasings, into
// ISO dates. "the twenty first of march nineteen oh five" → "1905-03-21"; "july fourth , two thousand and twelve" →
// "2012-07-04". The source is a sequence of words, the target one of characters (digits and '-'), between BOS and EOS.
import { mulberry32 } from 'retrograd';

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen',
  'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const ORDINAL_ONES = ['', 'first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth', 'ninth', 'tenth', 'eleventh', 'twelfth',
  'thirteenth', 'fourteenth', 'fifteenth', 'sixteenth', 'seventeenth', 'eighteenth', 'nineteenth'];
const ORDINAL_TENS = { 2: 'twentieth', 3: 'thirtieth' };
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/** 0 ≤ n < 100 in words. */
function cardinal(n) {
  if (n < 20) return [ONES[n]];
  return n % 10 === 0 ? [TENS[n / 10]] : [TENS[Math.floor(n / 10)], ONES[n % 10]];
}
/** 1 ≤ n ≤ 31 as an ordinal. */
function ordinal(n) {
  if (n < 20) return [ORDINAL_ONES[n]];
  return n % 10 === 0 ? [ORDINAL_TENS[n / 10]] : [TENS[Math.floor(n / 10)], ORDINAL_ONES[n % 10]];
}
/** A year of 1900–2099 in one of the ways people say it (`style` picks). */
function year(y, style) {
  const hi = Math.floor(y / 100), lo = y % 100;
  if (hi === 20 && (style % 2 === 0 || lo === 0)) return lo === 0 ? ['two', 'thousand'] : ['two', 'thousand', ...(style % 4 === 0 ? ['and'] : []), ...cardinal(lo)];
  if (lo === 0) return [...cardinal(hi), 'hundred'];
  return [...cardinal(hi), ...(lo < 10 ? ['oh', ONES[lo]] : cardinal(lo))];
}

const daysIn = (y, m) => [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m];

/** One date in words: [y, m, d] (m from 0) and a phrasing 0–5. */
export function dateInWords(y, m, d, phrasing) {
  const month = MONTHS[m];
  switch (phrasing) {
    case 0: return ['the', ...ordinal(d), 'of', month, ...year(y, 0)];
    case 1: return [month, ...ordinal(d), ',', ...year(y, 1)];
    case 2: return [...cardinal(d), month, ...year(y, 2)];
    case 3: return [...ordinal(d), month, ...year(y, 3)];
    case 4: return [month, 'the', ...ordinal(d), ...year(y, 4)];
    default: return ['on', 'the', ...ordinal(d), 'of', month, 'in', ...year(y, 5)];
  }
}
export const PHRASINGS = 6;

export const iso = (y, m, d) => `${y}-${String(m + 1).padStart(2, '0')}-${String(d).padStart(2, '0')}`;

/** Source words (PAD 0, then every word the phrasings use, sorted) and target characters (PAD 0, BOS 1, EOS 2, then
 * '-' and the digits). */
export function vocabularies() {
  const words = new Set(['the', 'of', ',', 'on', 'in', 'and', 'oh', 'hundred', 'thousand', ...ONES, ...TENS.filter(Boolean), ...ORDINAL_ONES.filter(Boolean), ...Object.values(ORDINAL_TENS), ...MONTHS]);
  const source = ['<pad>', ...[...words].sort()];
  const target = ['<pad>', '<bos>', '<eos>', '-', ...'0123456789'];
  return { source, target, sourceIndex: new Map(source.map((w, i) => [w, i])), targetIndex: new Map(target.map((c, i) => [c, i])) };
}

/**
 * `n` distinct (date, phrasing) pairs drawn with mulberry32(seed), none of them in `exclude` (a Set of keys), as padded
 * id arrays: src [n, srcLen], tgt [n, 12] (BOS, the 10 characters, EOS), and the texts.
 */
export function dateExamples(n, seed, { exclude = new Set(), srcLen = 12 } = {}) {
  const { sourceIndex, targetIndex } = vocabularies();
  const r = mulberry32(seed);
  const src = new Int32Array(n * srcLen), tgt = new Int32Array(n * 12), keys = new Set(), texts = [];
  while (texts.length < n) {
    const y = 1900 + Math.floor(r() * 200), m = Math.floor(r() * 12), d = 1 + Math.floor(r() * daysIn(y, m)), p = Math.floor(r() * PHRASINGS);
    const key = `${iso(y, m, d)}/${p}`;
    if (keys.has(key) || exclude.has(key)) continue;
    keys.add(key);
    const words = dateInWords(y, m, d, p), i = texts.length;
    words.forEach((w, j) => (src[i * srcLen + j] = sourceIndex.get(w)));
    [...'\u0001' + iso(y, m, d) + '\u0002'].forEach((c, j) => (tgt[i * 12 + j] = c === '\u0001' ? 1 : c === '\u0002' ? 2 : targetIndex.get(c)));
    texts.push({ words: words.join(' '), iso: iso(y, m, d) });
  }
  return { src, tgt, keys, texts, n, srcLen };
}
